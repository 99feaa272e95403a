"""The config contract, proven over the config space: a stack config either fails validation
with problems that name their keys (before any resource exists), or it builds under the plan's
mocks with every contract output, every capability and no failing control of its tier.

Hypothesis draws overrides of the example stack of each blueprint and tier (`ci` profile by
default; `pytest --hypothesis-profile=long` for a long run). Every failure it found is kept
below as an explicit regression case."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.config import (
    NAMESPACE,
    ConfigError,
    apply_project_defaults,
    existing_stack_file,
    read_stack_file,
    validate_settings,
)
from core.contract import OUTPUT_NAMES
from core.errors import ArgsError
from mlops.plan import run_plan
from tests.conftest import get_plan

CLIENT = {"sagemaker": "acme", "azureml": "contoso", "onprem": "globex"}
TIERS = ("dev", "staging", "prod")
DIGEST = "@sha256:" + "4a8e0c4b6c1d2f0e9b7a3c5d8e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f"
INSTANCE_TYPES = {
    "sagemaker": ("ml.m5.large", "ml.m5.xlarge", "ml.m5d.large", "ml.c5.2xlarge", "Standard_D2"),
    "azureml": ("Standard_DS3_v2", "Standard_F4s_v2", "ml.m5.large"),
    "onprem": ("ml.m5.large",),
}
TAG_KEYS = (
    "team",
    "cost-center",
    "aws:owner",
    "AWS:owner",
    "mlops:client",
    "a/b",
    "x<y",
    "k" * 64,
    "k" * 129,
    "example.com:team",
    "kubernetes.io:name",
    "bad key",
    "-lead",
)
CRONS = ("0 3 * * 1", "0 * * * *", "30 * * * *", "0 3 1 * 1", "*/15 * * * *")
AZURE_ID = "0123abcd-0000-0000-0000-000000000000"
TAG_VALUES = ("ml", "data science", "v" * 64, "v" * 257, "", "a/b", "x.y_z")


def _stack_values(stack: str) -> dict[str, Any]:
    values, _ = read_stack_file(existing_stack_file(stack))
    return {k.removeprefix(f"{NAMESPACE}:"): v for k, v in values.items()}


@st.composite
def stack_config(draw: st.DrawFn, blueprint: str) -> tuple[str, dict[str, Any]]:
    """(example stack, overrides): nested keys are merged into the stack file's own."""
    tier = draw(st.sampled_from(TIERS))
    stack = f"{CLIENT[blueprint]}-{tier}"
    base = _stack_values(stack)
    sections: dict[str, st.SearchStrategy[Any]] = {
        "endpoint": st.fixed_dictionaries(
            {},
            optional={
                "mode": st.sampled_from(("realtime", "serverless")),
                "minInstances": st.integers(0, 3),
                "maxInstances": st.integers(1, 6),
                "capturePercent": st.sampled_from((0, 50, 100)),
                "instanceType": st.sampled_from(INSTANCE_TYPES[blueprint]),
            },
        ),
        "rollout": st.fixed_dictionaries(
            {},
            optional={
                "strategy": st.sampled_from(("all-at-once", "canary", "linear")),
                "bakeMinutes": st.sampled_from((0, 1, 60, 61, 180)),
                "autoRollback": st.booleans(),
                "alarms": st.sampled_from(([], ["latency"], ["errors5xx", "invocationErrors"])),
                "trafficStepPercent": st.sampled_from((1, 25, 50)),
            },
        ),
        "stores": st.fixed_dictionaries({}, optional={"protect": st.booleans()}),
        "batch": st.fixed_dictionaries(
            {},
            optional={
                "enabled": st.booleans(),
                "outputPrefix": st.sampled_from(("batch/output/", "batch/input/scored/")),
            },
        ),
        "tracking": st.fixed_dictionaries({}, optional={"enabled": st.booleans()}),
        "approval": st.fixed_dictionaries(
            {}, optional={"mode": st.sampled_from(("auto", "manual"))}
        ),
        # the keys of the component-check audit (tests/unit/test_component_rules.py)
        "schedule": st.fixed_dictionaries({}, optional={"cron": st.sampled_from(CRONS)}),
        "drift": st.fixed_dictionaries({}, optional={"checkCron": st.sampled_from(CRONS)}),
        "budget": st.fixed_dictionaries(
            {}, optional={"alertPercents": st.sampled_from(([], [80], [50, 100, 200]))}
        ),
        "promotion": st.fixed_dictionaries(
            {}, optional={"targetAccount": st.sampled_from(("123456789012", AZURE_ID))}
        ),
        "release": st.fixed_dictionaries(
            {}, optional={"eventType": st.sampled_from(("mlops-release", "has space", ""))}
        ),
    }
    sections["network"] = st.fixed_dictionaries(  # mode and the address range
        {},
        optional={
            "mode": st.sampled_from(("public", "private")),
            "cidr": st.sampled_from(("10.40.0.0/16", "10.40.0.1/16", "172.16.0.0/20")),
        },
    )
    if blueprint == "sagemaker":
        sections["region"] = st.sampled_from(("us-east-1", "eu-central-2", "ca-west-1"))
    if blueprint == "onprem":
        sections["kubernetes"] = st.fixed_dictionaries(
            {},
            optional={
                "namespacePrefix": st.sampled_from(("mlops", "m", "a" * 31)),
                "clusterIssuer": st.sampled_from(("internal-ca", "Bad_Issuer")),
                "ingressDomain": st.sampled_from(("mlops.internal", "a..b")),
            },
        )
    overrides: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(sorted(sections)), unique=True, max_size=4)):
        value = draw(sections[key])
        overrides[key] = {**(base.get(key) or {}), **value} if isinstance(value, dict) else value
    if draw(st.booleans()):
        overrides["tags"] = draw(
            st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES), max_size=3)
        )
    if draw(st.booleans()):
        overrides["model"] = draw(st.sampled_from(("", "1", "3")))
    if draw(st.booleans()):
        repo = "ghcr.io/acme/mlops-kit:0.2.0"
        overrides["image"] = draw(st.sampled_from((repo, repo + DIGEST)))
    return stack, overrides


def check_contract(stack: str, overrides: dict[str, Any]) -> str:
    """The property: "rejected" (problems naming keys, raised by validation alone) or
    "built" (contract outputs, capabilities, no failing control)."""
    try:
        plan = run_plan(stack, overrides=overrides)
    except ConfigError as exc:
        assert exc.problems, exc
        for p in exc.problems:
            assert p.key and p.message and p.fix, p
            assert p.key.split(".")[0] in {*_stack_values(stack), *overrides, "image"} | {
                "endpoint",
                "rollout",
                "stores",
                "network",
                "approval",
                "ci",
            }, f"{p} names no key of the config"
        # The same problems come from validation alone: nothing was registered.
        values, secrets = read_stack_file(existing_stack_file(stack))
        values.update({f"{NAMESPACE}:{k}": v for k, v in overrides.items()})
        with pytest.raises(ConfigError) as again:
            validate_settings(apply_project_defaults(values), secrets, stack=stack)
        assert [str(p) for p in again.value.problems] == [str(p) for p in exc.problems]
        return "rejected"
    except ArgsError as exc:  # pragma: no cover - the failure this test exists to find
        pytest.fail(f"{stack} {overrides} passed validation, then a component refused it: {exc}")
    assert set(plan.outputs) == set(OUTPUT_NAMES)
    assert not plan.missing_capabilities, plan.missing_capabilities
    failed = {f.control.id: f.failures for f in plan.failed_controls}
    assert not failed, f"{stack} {overrides}: failing controls {failed}"
    return "built"


def validates(stack: str, overrides: dict[str, Any]) -> bool:
    """Validation alone (no program run): True, or False after checking that every problem
    names a key of the config."""
    values, secrets = read_stack_file(existing_stack_file(stack))
    values.update({f"{NAMESPACE}:{k}": v for k, v in overrides.items()})
    try:
        validate_settings(apply_project_defaults(values), secrets, stack=stack)
    except ConfigError as exc:
        assert exc.problems, exc
        for p in exc.problems:
            assert p.key and p.message and p.fix, p
        return False
    return True


# A build (an offline plan) costs 1-5 s and a validation ~20 ms, so the property is checked in
# two parts: many drawn configs are validated (3x the profile's examples), and a quarter of the
# profile's examples, drawn among the configs that validate, are built (ci: 24 and 2 per
# blueprint; `--hypothesis-profile=long`: 450 and 37).
VALIDATED = settings(max_examples=settings.default.max_examples * 3)
BUILT = settings(
    max_examples=max(2, settings.default.max_examples // 4),
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


@pytest.mark.parametrize("blueprint", sorted(CLIENT))
def test_every_config_validates_or_is_rejected_by_key(blueprint):
    @VALIDATED
    @given(stack_config(blueprint))
    def prop(case: tuple[str, dict[str, Any]]) -> None:
        validates(*case)

    prop()


@pytest.mark.parametrize("blueprint", sorted(CLIENT))
def test_every_config_that_validates_builds_clean(blueprint):
    @BUILT
    @given(stack_config(blueprint))
    def prop(case: tuple[str, dict[str, Any]]) -> None:
        assume(validates(*case))
        assert check_contract(*case) == "built"

    prop()


# Every failure hypothesis (or a person) found, kept as an explicit case: (stack, overrides,
# expected outcome, key the rejection names).
REGRESSIONS = [
    # staging's own defaults on AWS: linear rollout on one instance (ModelEndpoint refused it)
    ("acme-dev", {"environment": "staging", "model": "3"}, "rejected", "image"),
    (
        "acme-dev",
        {
            "environment": "staging",
            "model": "3",
            "image": "ghcr.io/acme/mlops-kit:0.1.0" + DIGEST,
            "promotion": {"target": "acme-prod"},
        },
        "built",
        None,
    ),
    ("acme-staging", {"endpoint": {"minInstances": 1}}, "rejected", "endpoint.minInstances"),
    (
        "acme-dev",
        {"endpoint": {"mode": "realtime", "minInstances": 1}, "rollout": {"strategy": "linear"}},
        "rejected",
        "endpoint.minInstances",
    ),
    (
        "acme-dev",
        {"endpoint": {"mode": "realtime", "minInstances": 0}},
        "rejected",
        "endpoint.minInstances",
    ),
    ("acme-dev", {"rollout": {"strategy": "canary"}}, "rejected", "rollout.strategy"),
    ("acme-prod", {"rollout": {"bakeMinutes": 61}}, "rejected", "rollout.bakeMinutes"),
    ("acme-prod", {"rollout": {"alarms": []}}, "rejected", "rollout.alarms"),
    (
        "acme-prod",
        {"endpoint": {"instanceType": "ml.m5d.large", "minInstances": 2}},
        "rejected",
        "endpoint.instanceType",
    ),
    ("acme-dev", {"tags": {"aws:owner": "ml"}}, "rejected", "tags.aws:owner"),
    ("acme-dev", {"tags": {"k" * 129: "ml"}}, "rejected", "tags." + "k" * 129),
    ("acme-dev", {"tags": {"team": "v" * 257}}, "rejected", "tags.team"),
    ("acme-dev", {"tags": {"mlops:client": "x"}}, "rejected", "tags.mlops:client"),
    # staging on Azure: one instance per deployment and unprotected stores failed controls
    ("contoso-staging", {"model": "3"}, "built", None),
    ("contoso-staging", {"stores": {"protect": False}}, "rejected", "stores.protect"),
    ("contoso-dev", {"tags": {"a/b": "ml"}}, "rejected", "tags.a/b"),
    ("contoso-dev", {"tags": {"x" * 513: "ml"}}, "rejected", "tags." + "x" * 513),
    # staging on-prem: MLflow on one replica, unpinned images, volumes not retained
    ("globex-staging", {"model": "3"}, "built", None),
    ("globex-staging", {"image": "ghcr.io/globex/mlops-kit:0.1.0"}, "rejected", "image"),
    ("globex-dev", {"endpoint": {"capturePercent": 50}}, "rejected", "endpoint.capturePercent"),
    ("globex-dev", {"tags": {"bad key": "ml"}}, "rejected", "tags.bad key"),
    ("globex-dev", {"tags": {"team": "data science"}}, "rejected", "tags.team"),
    ("globex-dev", {"tags": {"kubernetes.io:name": "x"}}, "rejected", "tags.kubernetes.io:name"),
    (
        "globex-staging",
        {"client": "g" * 20, "kubernetes": {"namespacePrefix": "a" * 31}},
        "rejected",
        "kubernetes.namespacePrefix",
    ),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "outcome", "key"),
    REGRESSIONS,
    ids=[f"{s}-{o}-{k or ''}"[:80] for s, _, o, k in REGRESSIONS],
)
def test_regression_case(stack, overrides, outcome, key):
    if outcome == "rejected":
        with pytest.raises(ConfigError) as exc:
            run_plan(stack, overrides=overrides)
        assert key in [p.key for p in exc.value.problems], exc.value
    assert check_contract(stack, overrides) == outcome


STACKS = [f"{c}-{t}" for c in CLIENT.values() for t in TIERS]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("pinned", [False, True], ids=["no-model", "model"])
def test_every_tier_on_every_blueprint_builds_clean(stack, pinned):
    has_model = "model" in _stack_values(stack)
    plan = get_plan(stack) if pinned == has_model else get_plan(stack, model="3" if pinned else "")
    assert (plan.settings.model is not None) == pinned
    assert set(plan.outputs) == set(OUTPUT_NAMES)
    assert not plan.missing_capabilities
    assert not plan.failed_controls, [(f.control.id, f.failures) for f in plan.failed_controls]
