"""The policy pack judges a resource as `mlops plan` does, enforced per tier (no plan run)."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
)

from core.controls import all_controls
from policy.pack import StackContext, enforcement, policies, stack_context


def _bucket(protect: bool) -> PolicyResource:
    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    return PolicyResource(
        "aws:s3/bucket:Bucket", {"bucket": "b"}, "urn:b", "acme-store", opts, None, None, [], {}
    )


def _violations(ctx: StackContext, protect: bool) -> list[str]:
    found: list[str] = []
    (policy,) = [p for p in policies(ctx, "aws") if p.name == "aws-s3-18"]
    policy.validate(StackValidationArgs([_bucket(protect)]), lambda m, urn=None: found.append(m))
    return found


def test_an_unprotected_bucket_is_a_violation_and_a_protected_one_is_not():
    assert _violations(StackContext("prod"), protect=False)
    assert not _violations(StackContext("prod"), protect=True)


def test_enforcement_follows_the_tier_and_suppressions():
    control = next(c for c in all_controls("aws") if c.id == "AWS-S3-18")
    assert enforcement(control, StackContext("prod")) is EnforcementLevel.MANDATORY
    assert enforcement(control, StackContext("staging")) is EnforcementLevel.MANDATORY
    assert enforcement(control, StackContext("dev")) is EnforcementLevel.ADVISORY
    waived = StackContext("prod", {"AWS-S3-18": "a justification here"})
    assert enforcement(control, waived) is EnforcementLevel.ADVISORY


def test_the_tier_is_read_from_the_stack_file():
    assert stack_context("acme-staging").environment == "staging"
    assert stack_context("acme-dev").environment == "dev"
