"""The CI deploy role cannot make itself administrator (issue #13): one test per escalation
path, evaluated with the controls engine's IAM evaluator over the documents the offline plan
recorded, plus the control (AWS-IAM-05) that catches any role able to rewrite its own
permissions, and the boundary every duty role carries (AWS-IAM-06)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core import controls as controls_mod
from core.controls import Record
from core.controls.engine import iam_allows, self_rewrites
from tests.conftest import get_plan

ACCOUNT = "123456789012"
ROLE = "aws:iam/role:Role"
CI = "acme-prod-ci-deploy"
OWN_ARN = f"arn:aws:iam::{ACCOUNT}:role/{CI}"
BOUNDARY_ARN = f"arn:aws:iam::{ACCOUNT}:policy/acme-prod-boundary"
DUTY_ARN = f"arn:aws:iam::{ACCOUNT}:role/acme-prod-pipeline"


@pytest.fixture(scope="module")
def plan():
    return get_plan("acme-prod")


@pytest.fixture(scope="module")
def ci_docs(plan) -> list[str]:
    docs = [
        r.inputs["policy"]
        for r in plan.by_type("aws:iam/rolePolicy:RolePolicy")
        if r.inputs["role"] == CI
    ]
    assert docs, "the prod stack declares the CI deploy role's policy"
    return docs


def _own_boundary(plan) -> str | None:
    return plan.one(ROLE, CI).inputs.get("permissionsBoundary")


def test_cannot_put_an_inline_policy_on_its_own_role(plan, ci_docs):
    ctx = {"iam:PermissionsBoundary": _own_boundary(plan)}
    assert not iam_allows(ci_docs, "iam:PutRolePolicy", OWN_ARN, ctx)


def test_cannot_attach_a_managed_policy_to_its_own_role(plan, ci_docs):
    ctx = {"iam:PermissionsBoundary": _own_boundary(plan)}
    assert not iam_allows(ci_docs, "iam:AttachRolePolicy", OWN_ARN, ctx)
    # nor create one to attach: the stack declares no managed policy but the boundary
    assert not iam_allows(ci_docs, "iam:CreatePolicy", BOUNDARY_ARN.replace("boundary", "x"))


def test_cannot_change_its_own_trust_policy(ci_docs):
    assert not iam_allows(ci_docs, "iam:UpdateAssumeRolePolicy", OWN_ARN)


def test_cannot_create_a_version_of_the_boundary_policy(ci_docs):
    for action in ("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy"):
        assert not iam_allows(ci_docs, action, BOUNDARY_ARN), action


@pytest.mark.parametrize("target", [OWN_ARN, DUTY_ARN])
def test_cannot_delete_a_permissions_boundary(ci_docs, target):
    ctx = {"iam:PermissionsBoundary": BOUNDARY_ARN}
    assert not iam_allows(ci_docs, "iam:DeleteRolePermissionsBoundary", target, ctx)


def test_changes_stack_roles_only_when_they_carry_the_boundary(ci_docs):
    """The deploy role still deploys: it writes duty-role policies under the boundary only."""
    with_boundary = {"iam:PermissionsBoundary": BOUNDARY_ARN}
    assert iam_allows(ci_docs, "iam:PutRolePolicy", DUTY_ARN, with_boundary)
    assert iam_allows(ci_docs, "iam:CreateRole", DUTY_ARN, with_boundary)
    for other in (None, f"arn:aws:iam::{ACCOUNT}:policy/acme-prod-wide-open"):
        assert not iam_allows(
            ci_docs, "iam:CreateRole", DUTY_ARN, {"iam:PermissionsBoundary": other}
        )


def test_passes_duty_roles_only_to_their_services(ci_docs):
    def passes(role: str, service: str) -> bool:
        arn = f"arn:aws:iam::{ACCOUNT}:role/acme-prod-{role}"
        return iam_allows(ci_docs, "iam:PassRole", arn, {"iam:PassedToService": service})

    assert passes("pipeline", "sagemaker.amazonaws.com")
    assert passes("trigger", "scheduler.amazonaws.com")
    assert not passes("pipeline", "lambda.amazonaws.com")
    assert not passes("release", "sagemaker.amazonaws.com")
    assert not passes("ci-deploy", "sagemaker.amazonaws.com")


def test_every_duty_role_carries_the_boundary_and_the_controls_pass(plan):
    for role in plan.by_type(ROLE):
        if role.inputs["name"] != CI:
            assert role.inputs.get("permissionsBoundary") == BOUNDARY_ARN, role.name
    assert plan.one("aws:iam/policy:Policy").inputs["name"] == "acme-prod-boundary"
    status = {f.control.id: f.status for f in plan.findings}
    assert status["AWS-IAM-05"] == "pass"
    assert status["AWS-IAM-06"] == "pass"
    assert not [r for r in plan.by_type(ROLE) if self_rewrites(r, plan.records)]


def test_aws_iam_05_bites_on_the_plan_with_the_old_deploy_policy(plan):
    """Before issue #13 the deploy role had `iam:*` on `role/<prefix>-*`: the control, run on
    the plan's own records, finds the paths."""
    old = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "iam:*",
                    "Resource": f"arn:aws:iam::{ACCOUNT}:role/acme-prod-*",
                }
            ]
        }
    )
    records = [
        dataclasses.replace(r, inputs={**r.inputs, "policy": old})
        if r.type == "aws:iam/rolePolicy:RolePolicy" and r.inputs["role"] == CI
        else r
        for r in plan.records
    ]
    paths = self_rewrites(plan.one(ROLE, CI), records)
    assert f"iam:PutRolePolicy on {OWN_ARN}" in paths
    assert f"iam:DeleteRolePermissionsBoundary on {DUTY_ARN}" in paths
    finding = next(
        f
        for f in controls_mod.evaluate(records, platform="aws", environment="prod")
        if f.control.id == "AWS-IAM-05"
    )
    assert finding.status == "fail"


def test_the_boundary_admits_every_duty_grant(plan):
    """A boundary that cut a duty's grant would break the stack at run time."""
    boundary = plan.one("aws:iam/policy:Policy").inputs["policy"]
    for rp in plan.by_type("aws:iam/rolePolicy:RolePolicy"):
        if rp.inputs["role"] == CI:
            continue
        for st in json.loads(rp.inputs["policy"])["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            for action in actions:
                for resource in resources:
                    concrete = action.replace("*", "X")
                    assert iam_allows([boundary], concrete, resource), (rp.name, action, resource)


def _role_with(statements: list[dict], **inputs) -> list[Record]:
    role = Record(
        "urn:role",
        ROLE,
        "r",
        "",
        True,
        {"name": "a-prod-ci-deploy", "tags": {"mlops:duty": "ci"}, **inputs},
        {},  # as in a plan: inputs only; the ARN's account comes from the documents
    )
    doc = json.dumps({"Version": "2012-10-17", "Statement": statements})
    rp = Record(
        "urn:rp",
        "aws:iam/rolePolicy:RolePolicy",
        "rp",
        "",
        True,
        {"role": "a-prod-ci-deploy", "policy": doc},
        {},
    )
    return [role, rp]


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:*", "arn:aws:iam::111122223333:role/a-prod-*"),  # the deploy role before issue #13
        ("iam:PutRolePolicy", "arn:aws:iam::111122223333:role/a-prod-ci-deploy"),
        ("iam:AttachRolePolicy", "arn:aws:iam::*:role/*"),
        ("iam:UpdateAssumeRolePolicy", "*"),
        ("iam:DeleteRolePermissionsBoundary", "arn:aws:iam::111122223333:role/a-prod-*"),
        ("iam:Put*", "arn:aws:iam::111122223333:role/a-prod-ci-*"),
    ],
)
def test_aws_iam_05_fails_a_role_that_can_rewrite_itself(action, resource):
    records = _role_with([{"Effect": "Allow", "Action": action, "Resource": resource}])
    finding = next(
        f
        for f in controls_mod.evaluate(records, platform="aws", environment="prod")
        if f.control.id == "AWS-IAM-05"
    )
    assert finding.status == "fail"
    assert "a-prod-ci-deploy" in finding.failures[0]


def test_aws_iam_05_fails_create_policy_version_on_a_policy_attached_to_the_role():
    policy = "arn:aws:iam::111122223333:policy/a-prod-deploy"
    records = _role_with(
        [{"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": policy}],
        managedPolicyArns=[policy],
    )
    assert self_rewrites(records[0], records) == [f"iam:CreatePolicyVersion on {policy}"]


def test_aws_iam_05_passes_a_deny_or_a_boundary_condition_it_cannot_meet():
    own = "arn:aws:iam::111122223333:role/a-prod-ci-deploy"
    denied = _role_with(
        [
            {
                "Effect": "Allow",
                "Action": "iam:*",
                "Resource": "arn:aws:iam::111122223333:role/a-prod-*",
            },
            {"Effect": "Deny", "Action": "iam:*", "Resource": own},
        ]
    )
    assert self_rewrites(denied[0], denied) == []
    bounded = _role_with(
        [
            {
                "Effect": "Allow",
                "Action": ["iam:PutRolePolicy", "iam:AttachRolePolicy"],
                "Resource": "arn:aws:iam::111122223333:role/a-prod-*",
                "Condition": {"StringEquals": {"iam:PermissionsBoundary": "arn:b"}},
            }
        ]
    )
    assert self_rewrites(bounded[0], bounded) == []
