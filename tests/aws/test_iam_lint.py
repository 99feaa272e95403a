"""Every IAM policy document the AWS example stacks declare, linted with parliament (duo-labs'
IAM linter, pinned in the dev extra), against an explicit allowlist where each entry says why.

Linted: identity policies (role policies, the permissions boundary) and resource policies
(bucket, key, queue, topic). Not linted: trust policies (`assumeRolePolicy`), which parliament
reads as identity policies and reports as malformed for lacking a Resource; the trust controls
(AWS-IAM-02, AWS-IAM-03, AWS-CI-01, AWS-CI-02, AWS-CI-04) check those."""

from __future__ import annotations

import fnmatch
import json

import pytest
from parliament import analyze_policy_string, enhance_finding

from tests.conftest import get_plan

# (issue, record-name glob, reason): every finding must match one entry.
ALLOWED = (
    (
        "MISMATCHED_TYPE",
        "*-artifacts-*-policy",
        'the TLS deny writes `NumericLessThan {s3:TlsVersion: "1.2"}` with a quoted number, '
        "as AWS's own example does; IAM parses it as a number",
    ),
    (
        "UNKNOWN_CONDITION_FOR_ACTION",
        "*-artifacts-*-policy",
        "the TLS deny covers `s3:*`; the few bucket-management actions that lack the key are "
        "not data access and are denied to everyone but the stack anyway",
    ),
    (
        "RESOURCE_MISMATCH",
        "*-ci-deploy",
        "`<service>:*` on ARNs named `<prefix>-*`: actions on other resource types match "
        "nothing, which is the point of scoping by name",
    ),
    (
        "RESOURCE_MISMATCH",
        "*-identities-*-policy",
        "`sagemaker-mlflow:*` on the stack's tracking server: the one action that takes `*` "
        "(AccessUI, the browser UI) is thereby not granted, on purpose",
    ),
    (
        "RESOURCE_STAR",
        "*-identities-*-policy",
        "the EC2 network-interface calls SageMaker makes for VPC jobs accept no resource scope "
        "(documented in components/aws/identities.py)",
    ),
    (
        "RESOURCE_STAR",
        "*-ci-deploy",
        "id-named EC2 and KMS calls (ids are unknown before creation), limited by condition to "
        "the stack's region",
    ),
    (
        "RESOURCE_STAR",
        "*-boundary-policy",
        "a permissions boundary caps services, not resources: the role's own grants scope them",
    ),
    ("RESOURCE_STAR", "*-keys-key", "in a key policy `*` is the key itself"),
    (
        "MISMATCHED_TYPE",
        "*-keys-key",
        "parliament types `kms:EncryptionContext:aws:logs:arn` as a string; AWS's CloudWatch "
        "Logs guide matches that key with ArnLike/ArnEquals, as the key policy does",
    ),
    (
        "MISMATCHED_TYPE_BUT_USABLE",
        "*-ci-deploy",
        "`StringEquals` on `iam:PermissionsBoundary` is the form AWS documents for that key",
    ),
)
STACKS = ("acme-dev", "acme-prod")


def _documents(stack: str) -> list[tuple[str, str, str]]:
    docs = []
    for r in get_plan(stack).records:
        value = r.inputs.get("policy")
        if r.custom and isinstance(value, str) and '"Statement"' in value:
            docs.append((r.type, r.name, value))
    return docs


@pytest.mark.parametrize("stack", STACKS)
def test_parliament_finds_nothing_outside_the_allowlist(stack):
    docs = _documents(stack)
    kinds = {t for t, _, _ in docs}
    assert {"aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy"} <= kinds
    unexplained = []
    for type_, name, doc in docs:
        for finding in analyze_policy_string(doc).findings:
            f = enhance_finding(finding)
            if not any(
                f.issue == issue and fnmatch.fnmatch(name, glob) for issue, glob, _ in ALLOWED
            ):
                unexplained.append(f"{name} ({type_}): {f.issue} {f.severity}: {f.detail}")
    assert not unexplained, "\n".join(unexplained)


def test_the_lint_catches_what_it_should():
    """The wiring bites: a misspelt action and a malformed ARN are reported."""
    doc = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Allow", "Action": "iam:GetRole", "Resource": "arn:aws:iam::1:role/x"},
            ],
        }
    )
    issues = {enhance_finding(f).issue for f in analyze_policy_string(doc).findings}
    assert {"UNKNOWN_ACTION", "INVALID_ARN"} <= issues


def test_every_allowlist_entry_has_a_reason():
    for issue, glob, reason in ALLOWED:
        assert issue.isupper() and glob and len(reason) > 20, (issue, glob)
