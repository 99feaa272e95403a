"""The policy pack judges a stack as `mlops plan` does, enforced per tier.

The pack is loaded the way the Pulumi CLI loads it: `python -m pulumi.policy <engine> policy`
runs `policy/__main__.py` with runpy and `PULUMI_STACK` set; the `PolicyPack` it constructs
builds the analyzer servicer, then would serve it over gRPC forever. `load_pack` stops it at
the point it registers the servicer and keeps that servicer: the object whose `AnalyzeStack`
and `GetAnalyzerInfo` the CLI calls. The requests are built from the offline plan's recorded
resources as the engine sends them (properties as a protobuf Struct, options, parent), so the
pack's own deserialization runs too. `test_the_pack_serves_over_grpc` runs the real server in
a subprocess once.
"""

from __future__ import annotations

import copy
import os
import runpy
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi.runtime.proto import analyzer_pb2_grpc
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties, serialize_properties
from pulumi_policy.policy import _NotApplicableError  # what `args.not_applicable` raises
from pulumi_policy.proxy import (
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_STRING_VALUE,
    unknown_checking_proxy,
)

from core.config import PROJECT_ROOT, list_stacks, load_stack
from core.controls import Record, all_controls, evaluate_control, seen_by_policy_packs
from mlops.plan import Plan
from policy.pack import StackContext, enforcement, policies, stack_context
from tests.conftest import get_plan

STACKS = list_stacks()
LEVEL = {proto.ADVISORY: "advisory", proto.MANDATORY: "mandatory"}  # the wire's levels


class _Served(Exception):
    """Raised where the PolicyPack would start serving."""


def load_pack(stack: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The analyzer servicer `policy/__main__.py` builds for `stack`, as the CLI starts it."""
    captured: dict[str, Any] = {}

    def register(servicer: Any, server: Any) -> None:
        captured["servicer"] = servicer
        raise _Served

    monkeypatch.setattr(analyzer_pb2_grpc, "add_AnalyzerServicer_to_server", register)
    monkeypatch.setattr(sys, "path", list(sys.path))  # __main__ puts the project root first
    monkeypatch.setenv("PULUMI_STACK", stack)
    with pytest.raises(_Served):
        runpy.run_path(str(PROJECT_ROOT / "policy"), run_name="__main__")
    return captured["servicer"]


def analyzer_resource(record: Record) -> proto.AnalyzerResource:
    """One recorded resource as the engine sends it to `AnalyzeStack`."""
    props = struct_pb2.Struct()
    props.update(serialize_properties(record.inputs))  # assets and archives in wire form
    return proto.AnalyzerResource(
        type=record.type,
        properties=props,
        urn=record.urn,
        name=record.name,
        options=proto.AnalyzerResourceOptions(
            protect=bool(record.options.get("protect")), parent=record.parent
        ),
        parent=record.parent,
        dependencies=list(record.options.get("dependsOn") or []),
    )


def analyze(servicer: Any, records: list[Record]) -> tuple[dict[str, set[str]], dict[str, str]]:
    """{policy: enforcement levels of its violations}, {policy: not-applicable reason}."""
    request = proto.AnalyzeStackRequest(resources=[analyzer_resource(r) for r in records])
    response = servicer.AnalyzeStack(request, None)
    violations: dict[str, set[str]] = {}
    for d in response.diagnostics:
        violations.setdefault(d.policyName, set()).add(LEVEL[d.enforcementLevel])
    return violations, {n.policy_name: n.reason for n in response.not_applicable}


def expected_verdict(status: str) -> set[str]:
    """The pack's violation levels for a control that has `status` in `mlops plan`."""
    return {"fail": {"mandatory"}, "waived": {"advisory"}, "suppressed": {"advisory"}}.get(
        status, set()
    )


def _plans() -> list[tuple[str, dict[str, str]]]:
    """Every example stack as it is, and pinned to a model where the file pins none."""
    cases: list[tuple[str, dict[str, str]]] = [(s, {}) for s in STACKS]
    cases += [(s, {"model": "1"}) for s in STACKS if not load_stack(s).model]
    return cases


def stack_args(records: list[Record]) -> StackValidationArgs:
    """The `StackValidationArgs` the analyzer builds from these resources: each one's
    properties through the same protobuf Struct, deserialization and unknown-checking proxy,
    its options and its parent (done once and shared by every policy; the analyzer redoes it
    per policy, which is what makes `AnalyzeStack` slow)."""
    resources: dict[str, PolicyResource] = {}
    for message in (analyzer_resource(r) for r in records):
        props = deserialize_properties(json_format.MessageToDict(message.properties))
        opts = PolicyResourceOptions(
            message.options.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [],
            message.options.parent or None,
        )  # fmt: skip
        resources[message.urn] = PolicyResource(
            message.type, unknown_checking_proxy(props), message.urn, message.name, opts,
            None, None, [], {},
        )  # fmt: skip
    for record in records:
        resources[record.urn].parent = resources.get(record.parent)
    return StackValidationArgs(list(resources.values()))


def judge(stack: str, records: list[Record]) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Every policy of the stack's pack on its resources, as the analyzer runs them:
    {policy: enforcement levels of its violations}, {policy: not-applicable reason}."""
    found, not_applicable = judge_urns(stack, records)
    return {name: {level for level, _ in seen} for name, seen in found.items()}, not_applicable


def judge_urns(
    stack: str, records: list[Record]
) -> tuple[dict[str, list[tuple[str, str | None]]], dict[str, str]]:
    """`judge` with each violation's (enforcement level, urn)."""
    args = stack_args(records)
    found: dict[str, list[tuple[str, str | None]]] = {}
    not_applicable: dict[str, str] = {}
    for policy in policies(stack_context(stack)):
        urns: list[str | None] = []
        try:
            policy.validate(args, lambda _message, urn=None, into=urns: into.append(urn))
        except _NotApplicableError as exc:
            not_applicable[policy.name] = exc.reason or ""
        if urns:
            found[policy.name] = [(str(policy.enforcement_level.value), urn) for urn in urns]
    return found, not_applicable


@pytest.mark.parametrize(
    ("stack", "overrides"), _plans(), ids=[f"{s}{'+model' if o else ''}" for s, o in _plans()]
)
def test_the_pack_gives_the_plans_verdict_on_every_example_stack(
    stack: str, overrides: dict[str, str]
) -> None:
    plan = get_plan(stack, **overrides)
    violations, not_applicable = judge(stack, plan.records)
    held = {p.name for p in policies(stack_context(stack))}
    assert held == {f.control.id.lower() for f in plan.findings}, "the pack holds other controls"
    for finding in plan.findings:
        name = finding.control.id.lower()
        if not seen_by_policy_packs(finding.control):
            assert name not in violations, name
            assert finding.control.id in not_applicable[name]
            assert "mlops plan" in not_applicable[name]
            continue
        assert name not in not_applicable, name
        assert violations.get(name, set()) == expected_verdict(finding.status), (
            f"{stack} {overrides}: {finding.control.id} is {finding.status} in mlops plan "
            f"({finding.failures}), the pack reports {violations.get(name)}"
        )


def test_the_analyzer_gives_the_same_verdicts_as_the_shared_args(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`judge` shares one conversion of the resources between the policies; the analyzer's
    own `AnalyzeStack` (one conversion per policy) reports the same on a stack with failures
    of both levels (dev: waived controls) and controls it cannot check."""
    plan = get_plan("globex-dev", model="1")
    assert {f.status for f in plan.findings} >= {"pass", "waived"}
    assert analyze(load_pack("globex-dev", monkeypatch), plan.records) == judge(
        "globex-dev", plan.records
    )


def test_the_pack_lists_one_policy_per_control_with_its_enforcement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = load_pack("acme-dev", monkeypatch).GetAnalyzerInfo(empty_pb2.Empty(), None)
    levels = {p.name: LEVEL[p.enforcementLevel] for p in info.policies}
    assert info.name == "mlops-controls"
    assert set(levels) == {c.id.lower() for c in all_controls("aws")}  # the stack's platform
    assert levels["aws-s3-20"] == "mandatory"  # no dev exception: fails dev too
    assert levels["aws-s3-18"] == "advisory"  # a dev exception: waived in dev
    assert levels["aws-s3-19"] == "advisory"  # not checkable by a pack
    unseen = [p for p in info.policies if p.name == "aws-s3-19"][0]
    assert "mlops plan" in unseen.description


# One violation per platform, made by mutating one recorded resource of the prod plan: a
# control with a dev exception, so the same violation is mandatory in prod and advisory in dev.
def _unprotect_a_bucket(r: Record) -> bool:
    if r.type != "aws:s3/bucket:Bucket":
        return False
    r.options["protect"] = False
    return True


def _open_a_storage_account(r: Record) -> bool:
    if r.type != "azure-native:storage:StorageAccount":
        return False
    r.inputs["publicNetworkAccess"] = "Enabled"
    return True


def _one_mlflow_replica(r: Record) -> bool:
    labels = (r.inputs.get("metadata") or {}).get("labels") or {}
    if r.type != "kubernetes:apps/v1:Deployment" or labels.get("mlops/component") != "tracking":
        return False
    r.inputs["spec"]["replicas"] = 1
    return True


VIOLATIONS: list[tuple[str, str, str, Callable[[Record], bool]]] = [
    ("aws", "sagemaker", "AWS-S3-18", _unprotect_a_bucket),
    ("azure", "azureml", "AZ-ST-06", _open_a_storage_account),
    ("kubernetes", "onprem", "K8S-MLF-01", _one_mlflow_replica),
]


def _stack_of(blueprint: str, environment: str) -> str:
    settings = {s: load_stack(s) for s in STACKS}
    return next(
        s
        for s, st in settings.items()
        if (st.blueprint, st.environment) == (blueprint, environment)
    )


def _mutated(plan: Plan, mutate: Callable[[Record], bool]) -> tuple[list[Record], str]:
    records = copy.deepcopy(plan.records)
    hit = next(r for r in records if mutate(r))
    return records, hit.urn


@pytest.mark.parametrize(
    ("platform", "blueprint", "control_id", "mutate"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS]
)
def test_a_violation_is_mandatory_in_prod_and_advisory_in_dev(
    platform: str,
    blueprint: str,
    control_id: str,
    mutate: Callable[[Record], bool],
) -> None:
    prod, dev = _stack_of(blueprint, "prod"), _stack_of(blueprint, "dev")
    plan = get_plan(prod)
    control = next(c for c in all_controls(platform) if c.id == control_id)
    assert evaluate_control(control, plan.records, environment="prod").status == "pass"
    records, urn = _mutated(plan, mutate)
    # mlops plan's verdict on the mutated stack: fails prod, waived in dev
    assert evaluate_control(control, records, environment="prod").status == "fail"
    assert evaluate_control(control, records, environment="dev").status == "waived"
    name = control_id.lower()
    for stack, level in ((prod, "mandatory"), (dev, "advisory")):
        found, _ = judge_urns(stack, records)
        assert found.pop(name) == [(level, urn)], stack
        blocking = {n for n, seen in found.items() if any(lv == "mandatory" for lv, _ in seen)}
        assert not blocking, f"{stack}: the mutation broke more than {control_id}: {blocking}"


def test_the_pack_serves_over_grpc() -> None:
    """`python -m pulumi.policy <engine> policy`, as the CLI's policy-python analyzer runs it:
    the pack prints its port and answers over gRPC."""
    env = {**os.environ, "PULUMI_STACK": "globex-prod", "PULUMI_PROJECT": "mlops"}
    env["PULUMI_DRY_RUN"] = "true"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PROJECT_ROOT / "policy")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=PROJECT_ROOT,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert len(info.policies) == len(all_controls("kubernetes"))
            plan = get_plan("globex-prod")
            response = stub.AnalyzeStack(
                proto.AnalyzeStackRequest(resources=[analyzer_resource(r) for r in plan.records]),
                timeout=60,
            )
        assert [d.policyName for d in response.diagnostics] == []  # prod passes its controls
        assert {n.policy_name for n in response.not_applicable} >= {"k8s-pv-02", "k8s-ns-05"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_value_unknown_during_preview_defers_only_what_depends_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A preview before the buckets exist: a public access block's `bucket` is unknown, so
    "every bucket has a public access block" cannot be judged yet (the analyzer's advisory
    "can't run policy during preview"); a bucket whose forceDestroy is known to be on is still a
    mandatory violation, one whose forceDestroy is unknown is not judged."""
    records = copy.deepcopy(get_plan("acme-prod").records)
    blocks = [
        r for r in records if r.type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    ]
    buckets = [r for r in records if r.type == "aws:s3/bucket:Bucket"]
    assert len(buckets) >= 2
    blocks[0].inputs["bucket"] = UNKNOWN_STRING_VALUE
    buckets[0].inputs["forceDestroy"] = UNKNOWN_BOOLEAN_VALUE
    buckets[1].inputs["forceDestroy"] = True
    servicer = load_pack("acme-prod", monkeypatch)
    response = servicer.AnalyzeStack(
        proto.AnalyzeStackRequest(resources=[analyzer_resource(r) for r in records]), None
    )
    by_policy: dict[str, list[Any]] = {}
    for d in response.diagnostics:
        by_policy.setdefault(d.policyName, []).append(d)
    (deferred,) = by_policy.pop("aws-s3-01")
    assert deferred.enforcementLevel == proto.ADVISORY
    assert "can't run policy 'aws-s3-01'" in deferred.message
    assert [(d.urn, d.enforcementLevel) for d in by_policy.pop("aws-s3-20")] == [
        (buckets[1].urn, proto.MANDATORY)
    ]
    assert by_policy == {}, f"unexpected violations: {sorted(by_policy)}"


# The validate functions on hand-built resources (no plan run).
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
