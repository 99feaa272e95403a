"""The AWS CI deploy role trusts an Azure DevOps AWS service connection (OIDC) when the stack
sets `mlops:ci.azureDevops`: the offline plan's provider and trust statement, the config
errors that name the key, and the controls that refuse a loose trust (AWS-CI-01..04)."""

from __future__ import annotations

import json

import pytest

from components.aws import ci_identity as aws_ci
from core.config import ConfigError, read_stack_file, stack_file, validate_settings
from core.controls import Record, evaluate
from core.errors import ArgsError
from tests.conftest import get_plan

ORG_ID = "61c028b9-510c-4f84-bfb2-f48d33b6b542"
ISSUER = f"vstoken.dev.azure.com/{ORG_ID}"
ADO = {
    "organizationId": ORG_ID,
    "organization": "acme",
    "project": "ml-platform",
    "serviceConnection": "mlops-aws-prod",
}
SUBJECT = "sc://acme/ml-platform/mlops-aws-prod"
PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
CI_CONTROLS = ("AWS-CI-01", "AWS-CI-02", "AWS-CI-03", "AWS-CI-04", "AWS-IAM-03", "AWS-IAM-05")


def _trust(plan, stack: str = "acme-prod") -> list[dict]:
    role = plan.one("aws:iam/role:Role", f"{stack}-ci-deploy")
    return json.loads(role.inputs["assumeRolePolicy"])["Statement"]


def _status(plan, control_id: str) -> set[str]:
    return {f.status for f in plan.findings if f.control.id == control_id}


def test_the_role_trusts_the_service_connection_exactly_beside_github():
    plan = get_plan("acme-prod", ci={"environment": "prod", "azureDevops": ADO})
    github, ado = _trust(plan)
    assert github["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == (
        "repo:acme/ml-platform:environment:prod"
    )
    assert ado["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert ado["Condition"] == {
        "StringEquals": {f"{ISSUER}:aud": "api://AzureADTokenExchange", f"{ISSUER}:sub": SUBJECT}
    }
    provider = plan.one(PROVIDER, "acme-prod-ci-azure-devops-oidc")
    assert provider.inputs["url"] == f"https://{ISSUER}"
    assert provider.inputs["clientIdLists"] == ["api://AzureADTokenExchange"]
    assert ado["Principal"]["Federated"].endswith("acme-prod-ci-azure-devops-oidc")
    deploy = json.loads(
        plan.one("aws:iam/rolePolicy:RolePolicy", "acme-prod-ci-deploy").inputs["policy"]
    )
    read = next(s for s in deploy["Statement"] if s["Sid"] == "ReadStackIam")
    assert any(r.endswith(f":oidc-provider/{ISSUER}") for r in read["Resource"])
    for cid in CI_CONTROLS:
        assert _status(plan, cid) == {"pass"}, cid
    assert not plan.failed_controls


def test_without_the_keys_the_role_trusts_github_only():
    plan = get_plan("acme-prod")
    (only,) = _trust(plan)
    assert set(only["Condition"]["StringEquals"]) == {
        "token.actions.githubusercontent.com:aud",
        "token.actions.githubusercontent.com:sub",
    }
    assert [p.inputs["url"] for p in plan.by_type(PROVIDER)] == [
        "https://token.actions.githubusercontent.com"
    ]
    assert "vstoken" not in json.dumps(
        [r.inputs for r in plan.by_type("aws:iam/rolePolicy:RolePolicy")]
    )


def test_an_existing_provider_is_reused():
    arn = f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"
    plan = get_plan(
        "acme-prod", ci={"environment": "prod", "azureDevops": {**ADO, "oidcProviderArn": arn}}
    )
    assert [p.name for p in plan.by_type(PROVIDER)] == ["acme-prod-ci-github-oidc"]
    assert _trust(plan)[1]["Principal"] == {"Federated": arn}
    assert not plan.failed_controls


@pytest.mark.parametrize(
    ("stack", "overrides", "connection"),
    [
        (  # released from Azure DevOps: release.repository names organization/project
            "acme-prod",
            {
                "release": {"provider": "azuredevops", "repository": "acme/ml-platform"},
                "ci": {"environment": "prod", "azureDevops": ADO},
            },
            "mlops-aws-prod",
        ),
        (  # no release provider: ci.yml's apply_sagemaker job applies it with mlops-aws-dev
            "acme-dev",
            {"ci": {"azureDevops": {**ADO, "serviceConnection": "mlops-aws-dev"}}},
            "mlops-aws-dev",
        ),
    ],
)
def test_a_stack_without_a_github_release_trusts_the_service_connection_only(
    stack, overrides, connection
):
    plan = get_plan(stack, **overrides)
    (only,) = _trust(plan, stack)
    assert only["Condition"]["StringEquals"][f"{ISSUER}:sub"] == (
        f"sc://acme/ml-platform/{connection}"
    )
    assert [p.name for p in plan.by_type(PROVIDER)] == [f"{stack}-ci-azure-devops-oidc"]
    for cid in CI_CONTROLS:
        assert _status(plan, cid) == {"pass"}, cid


def _config(ci: dict, **keys) -> dict:
    values, _ = read_stack_file(stack_file("acme-prod"))
    return {**values, "mlops:ci": ci, **{f"mlops:{k}": v for k, v in keys.items()}}


@pytest.mark.parametrize(
    ("ado", "named", "fragment"),
    [
        (
            {**ADO, "organizationId": "acme"},
            "organizationId='acme'",
            "is not an Azure DevOps organization id",
        ),
        ({**ADO, "organizationId": ORG_ID.upper()}, "organizationId=", "lowercase GUID"),
        ({**ADO, "organization": ""}, "organization=''", "is required"),
        ({k: v for k, v in ADO.items() if k != "project"}, "project=<unset>", "is required"),
        ({**ADO, "serviceConnection": "*"}, "serviceConnection='*'", "no wildcards"),
        ({**ADO, "project": "ml-*"}, "project='ml-*'", "no wildcards"),
        ({**ADO, "project": "a/b"}, "project='a/b'", "no wildcards"),
        ({**ADO, "serviceConnection": " mlops"}, "serviceConnection=' mlops'", "plain name"),
        ({**ADO, "organization": "-acme"}, "organization='-acme'", "organization name"),
        (
            {
                **ADO,
                "oidcProviderArn": f"arn:aws:iam::123456789012:oidc-provider/{ISSUER[:-1]}0",
            },
            "oidcProviderArn=",
            f"provider for https://{ISSUER}",
        ),
    ],
)
def test_bad_values_are_config_errors_naming_the_key(ado, named, fragment):
    with pytest.raises(ConfigError) as err:
        validate_settings(
            _config({"environment": "prod", "azureDevops": ado}),
            {"mlops:releaseToken"},
            stack="acme-prod",
        )
    line = next(str(p) for p in err.value.problems if "azureDevops" in p.key)
    assert f"mlops:ci.azureDevops.{named}" in line, line
    assert fragment in line, line
    assert "; set" in line  # and says how to fix it


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"blueprint": "azureml"}, "applies to blueprint sagemaker only"),
        ({"ci": {"identity": False, "azureDevops": ADO}}, "ci.identity is false"),
    ],
)
def test_the_keys_apply_to_a_sagemaker_stack_with_a_ci_identity(overrides, fragment):
    ci = overrides.pop("ci", {"environment": "prod", "azureDevops": ADO})
    with pytest.raises(ConfigError, match=fragment):
        validate_settings(_config(ci, **overrides), {"mlops:releaseToken"}, stack="acme-prod")


def test_good_keys_validate_and_unset_keys_change_nothing():
    s = validate_settings(
        _config({"environment": "prod", "azureDevops": ADO}),
        {"mlops:releaseToken"},
        stack="acme-prod",
    )
    assert (s.ci.azure_devops.organization_id, s.ci.azure_devops.service_connection) == (
        ORG_ID,
        "mlops-aws-prod",
    )
    bare = validate_settings(
        _config({"environment": "prod"}), {"mlops:releaseToken"}, stack="acme-prod"
    )
    assert bare.ci.azure_devops.organization_id is None


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("ado_service_connection", "*", "ado_service_connection='*'"),
        ("ado_project", "ml-?", "ado_project='ml-?'"),
        ("ado_organization_id", "not-a-guid", "ado_organization_id='not-a-guid'"),
        ("ado_organization", "", "ado_organization=''"),
    ],
)
def test_the_component_refuses_a_loose_subject_before_any_resource(field, value, fragment):
    ado = {
        "ado_organization_id": ORG_ID,
        "ado_organization": "acme",
        "ado_project": "ml-platform",
        "ado_service_connection": "mlops-aws-prod",
        field: value,
    }
    args = aws_ci.CiIdentityArgs(
        prefix="a-dev", repository=None, account_id="1", region="eu-west-1", boundary_arn="b", **ado
    )
    with pytest.raises(ArgsError, match=fragment.replace("?", r"\?")):
        aws_ci.CiIdentity("x", args)


def test_the_component_needs_a_github_or_an_azure_devops_trust():
    args = aws_ci.CiIdentityArgs(
        prefix="a-dev", repository=None, account_id="1", region="eu-west-1", boundary_arn="b"
    )
    with pytest.raises(ArgsError, match="ci.azureDevops"):
        aws_ci.validate_ci_identity_args(args)


def _statement(condition: dict, federated: str = "arn:aws:iam::1:oidc-provider/x") -> dict:
    return {
        "Effect": "Allow",
        "Principal": {"Federated": federated},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }


GITHUB_OK = _statement(
    {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:a/b:environment:prod",
        }
    }
)
ADO_OK = _statement(
    {"StringEquals": {f"{ISSUER}:aud": "api://AzureADTokenExchange", f"{ISSUER}:sub": SUBJECT}}
)


@pytest.mark.parametrize(
    ("name", "statements", "expected"),
    [
        ("github and azure devops, both pinned", [GITHUB_OK, ADO_OK], "pass"),
        (
            "azure devops sub with a wildcard",
            [
                GITHUB_OK,
                _statement(
                    {
                        "StringEquals": {
                            f"{ISSUER}:aud": "api://AzureADTokenExchange",
                            f"{ISSUER}:sub": "sc://acme/*",
                        }
                    }
                ),
            ],
            "fail",
        ),
        (
            "azure devops sub by StringLike",
            [
                GITHUB_OK,
                _statement(
                    {
                        "StringEquals": {f"{ISSUER}:aud": "api://AzureADTokenExchange"},
                        "StringLike": {f"{ISSUER}:sub": SUBJECT},
                    }
                ),
            ],
            "fail",
        ),
        (
            "azure devops audience only (any service connection of the organization)",
            [
                GITHUB_OK,
                _statement({"StringEquals": {f"{ISSUER}:aud": "api://AzureADTokenExchange"}}),
            ],
            "fail",
        ),
        (
            "two subjects in one statement",
            [
                _statement(
                    {
                        "StringEquals": {
                            f"{ISSUER}:aud": "api://AzureADTokenExchange",
                            f"{ISSUER}:sub": [SUBJECT, "sc://x/y/z"],
                        }
                    }
                )
            ],
            "fail",
        ),
        ("wildcard provider", [{**ADO_OK, "Principal": {"Federated": "*"}}], "fail"),
    ],
)
def test_aws_ci_04_refuses_every_loose_oidc_statement(name, statements, expected):
    record = Record(
        "urn",
        "aws:iam/role:Role",
        "r",
        "",
        True,
        {"assumeRolePolicy": json.dumps({"Statement": statements}), "tags": {"mlops:duty": "ci"}},
        {},
    )
    finding = next(
        f
        for f in evaluate([record], platform="aws", environment="prod")
        if f.control.id == "AWS-CI-04"
    )
    assert finding.status == expected, name
