"""Keyless CI identities: what each blueprint declares (offline plan under Pulumi mocks), the
controls that guard them, and the argument checks."""

from __future__ import annotations

import json

import pytest

from components.aws import ci_identity as aws_ci
from components.azure import ci_identity as az_ci
from components.onprem import ci_identity as k8s_ci
from core import controls as controls_mod
from core.errors import ArgsError
from tests.conftest import get_plan


def _status(plan, control_id: str) -> str:
    return next(f.status for f in plan.findings if f.control.id == control_id)


def test_aws_deploy_role_trusts_the_prod_environment_only():
    plan = get_plan("acme-prod")
    role = plan.one("aws:iam/role:Role", "acme-prod-ci-deploy")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:acme/ml-platform:environment:prod",
        }
    }
    assert role.inputs["maxSessionDuration"] == 3600
    assert plan.one("aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs["url"] == (
        "https://token.actions.githubusercontent.com"
    )
    assert not plan.by_type("aws:iam/accessKey:AccessKey")
    for cid in ("AWS-CI-01", "AWS-CI-02", "AWS-CI-03", "AWS-IAM-03"):
        assert _status(plan, cid) == "pass", cid


def test_no_ci_identity_without_a_repository_or_when_switched_off():
    assert not get_plan("acme-dev").by_type("mlops:aws:CiIdentity")  # no release.repository
    off = get_plan("acme-prod", ci={"identity": False, "environment": "prod"})
    assert not off.by_type("mlops:aws:CiIdentity")


def test_azure_federated_credential_and_resource_group_grants():
    plan = get_plan("contoso-prod")
    fic = plan.one("azure-native:managedidentity:FederatedIdentityCredential")
    assert fic.inputs["subject"] == "repo:contoso/ml-platform:environment:prod"
    assert fic.inputs["audiences"] == ["api://AzureADTokenExchange"]
    rbac = plan.one("azure-native:authorization:RoleAssignment", "contoso-prod-ci-assign-kit-roles")
    assert rbac.inputs["conditionVersion"] == "2.0"
    assert "GuidEquals" in rbac.inputs["condition"]
    for cid in ("AZ-CI-01", "AZ-CI-02", "AZ-CI-03", "AZ-CI-04", "AZ-IAM-01"):
        assert _status(plan, cid) == "pass", cid


def test_onprem_service_account_is_namespace_scoped_without_token_secret():
    plan = get_plan("globex-prod")
    sa = next(
        r
        for r in plan.by_type("kubernetes:core/v1:ServiceAccount")
        if r.inputs["metadata"]["name"] == "globex-prod-ci"
    )
    assert sa.inputs["automountServiceAccountToken"] is False
    roles = [
        r
        for r in plan.by_type("kubernetes:rbac.authorization.k8s.io/v1:Role")
        if r.inputs["metadata"]["name"] == "globex-prod-ci-deploy"
    ]
    assert len(roles) == 3
    # its get/patch of exactly its own Namespace objects is the cluster stack's ClusterRole
    shared = get_plan("globex-cluster")
    rbac = "kubernetes:rbac.authorization.k8s.io/v1"
    cluster = shared.one(f"{rbac}:ClusterRole", "tenants-globex-prod-ci-namespaces")
    assert set(cluster.inputs["rules"][0]["resourceNames"]) == {
        r.inputs["metadata"]["namespace"] for r in roles
    }
    binding = shared.one(f"{rbac}:ClusterRoleBinding", "tenants-globex-prod-ci-namespaces")
    assert binding.inputs["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": "globex-prod-ci",
            "namespace": sa.inputs["metadata"]["namespace"],
        }
    ]
    assert plan.by_type(f"{rbac}:ClusterRole") == []
    assert _status(plan, "K8S-CI-01") == "pass"
    assert _status(shared, "K8S-CI-03") == "pass"


@pytest.mark.parametrize(
    ("cid", "trust"),
    [
        ("AWS-CI-01", {"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:acme/*"}}),
        (
            "AWS-CI-02",
            {
                "StringLike": {
                    "token.actions.githubusercontent.com:sub": "repo:a/b:*",
                    "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                }
            },
        ),
    ],
)
def test_aws_ci_controls_fail_a_loose_trust(cid, trust):
    from core.controls import Record

    doc = json.dumps({"Statement": [{"Effect": "Allow", "Condition": trust}]})
    record = Record(
        "urn",
        "aws:iam/role:Role",
        "r",
        "",
        True,
        {"assumeRolePolicy": doc, "tags": {"mlops:duty": "ci"}},
        {},
    )
    finding = next(
        f
        for f in controls_mod.evaluate([record], platform="aws", environment="prod")
        if f.control.id == cid
    )
    assert finding.status == "fail"


def test_component_args_are_checked_before_any_resource():
    with pytest.raises(ArgsError, match="repository='nope' is not owner/repo"):
        aws_ci.CiIdentity(
            "x",
            aws_ci.CiIdentityArgs(
                prefix="a-dev", repository="nope", account_id="1", region="eu-west-1"
            ),
        )
    with pytest.raises(ArgsError, match="free of wildcards"):
        aws_ci.CiIdentity(
            "x",
            aws_ci.CiIdentityArgs(
                prefix="a-dev",
                repository="o/r",
                account_id="1",
                region="eu-west-1",
                branch="release/*",
            ),
        )
    with pytest.raises(ArgsError, match="repository='' is not owner/repo"):
        az_ci.validate_ci_identity_args(
            az_ci.CiIdentityArgs(
                prefix="c-dev",
                location="eastus",
                resource_group_name="rg",
                resource_group_id="id",
                subscription_id="s",
                repository="",
            )
        )
    with pytest.raises(ArgsError, match="namespaces"):
        k8s_ci.validate(k8s_ci.CiIdentityArgs(prefix="g-dev", home_namespace="p", namespaces=[]))
    assert (
        aws_ci.subject(
            aws_ci.CiIdentityArgs(prefix="a", repository="o/r", account_id="1", region="eu-west-1")
        )
        == "repo:o/r:ref:refs/heads/main"
    )


def test_aws_reuses_the_accounts_oidc_provider_when_configured(plan_for) -> None:
    provider = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    created = plan_for("acme-prod")
    reused = plan_for("acme-prod", ci={"environment": "prod", "oidcProviderArn": provider})
    kind = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
    assert len(created.by_type(kind)) == 1
    assert reused.by_type(kind) == []
    role = next(r for r in reused.by_type("aws:iam/role:Role") if r.name.endswith("-ci-deploy"))
    assert provider in role.inputs["assumeRolePolicy"]
    assert not reused.failed_controls
