"""The stack contract over every example stack: same outputs on every blueprint, at least one
resource per capability, every control passing in prod, nothing half-built on bad input.

Cluster stacks (blueprint `cluster`) are not client stacks: they export CLUSTER_OUTPUTS and give
no capability themselves; they are held to that below instead of to the contract."""

from __future__ import annotations

import pytest

from core.config import ConfigError, list_stacks, load_stack
from core.contract import CLUSTER_BLUEPRINT, CLUSTER_OUTPUT_NAMES, OUTPUT_NAMES, Capability
from mlops.plan import run_plan
from tests.conftest import get_plan

CLUSTER_STACKS = [s for s in list_stacks() if load_stack(s).blueprint == CLUSTER_BLUEPRINT]
STACKS = [s for s in list_stacks() if s not in CLUSTER_STACKS]
BUILT = STACKS
BUILT_WITHOUT_MODEL = [s for s in BUILT if not load_stack(s).model]


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_are_exactly_the_contract(stack: str) -> None:
    assert tuple(get_plan(stack).outputs) == OUTPUT_NAMES


@pytest.mark.parametrize("stack", BUILT)
def test_every_capability_has_a_resource(stack: str) -> None:
    plan = get_plan(stack)
    assert plan.missing_capabilities == [], f"{stack}: no resource gives these"
    off = plan.capabilities_off
    if plan.settings.environment == "prod":
        assert off == {}, f"{stack}: prod turns capabilities off: {off}"
    # with a model pinned, only what the config itself switches off may be absent
    pinned = get_plan(stack, model="1") if plan.settings.model is None else plan
    missing = [
        c.value
        for c in Capability
        if pinned.capabilities[c.value] == 0 and c.value not in pinned.capabilities_off
    ]
    assert not missing, f"{stack} with a model: no resource gives {missing}"


@pytest.mark.parametrize("stack", BUILT_WITHOUT_MODEL)
def test_without_a_model_there_is_no_endpoint(stack: str) -> None:
    plan = get_plan(stack)
    assert plan.capabilities[Capability.SERVING_ENDPOINT.value] == 0
    assert plan.outputs["endpointName"] in ("", None)
    assert plan.missing_capabilities == []


@pytest.mark.parametrize("stack", BUILT)
def test_controls_pass(stack: str) -> None:
    plan = get_plan(stack)
    failed = [(f.control.id, f.failures) for f in plan.failed_controls]
    assert not failed, f"{stack}: failing controls {failed}"
    if plan.settings.environment == "prod":
        assert not [f for f in plan.findings if f.status in ("waived", "suppressed")]
        applicable = [f for f in plan.findings if f.status == "pass"]
        assert applicable, f"{stack}: no control applied"


def test_output_names_identical_across_blueprints() -> None:
    names = {load_stack(s).blueprint: tuple(get_plan(s).outputs) for s in STACKS}
    assert len(set(names.values())) <= 1, names


@pytest.mark.parametrize("stack", BUILT)
def test_resources_sit_under_components(stack: str) -> None:
    plan = get_plan(stack)
    by_urn = {r.urn: r for r in plan.records}
    for r in plan.records:
        if r.custom and not r.type.startswith("pulumi:providers:"):
            assert r.parent in by_urn, f"{r.name} ({r.type}) is not inside a component"
            assert not by_urn[r.parent].custom, f"{r.name}: parent {r.parent} is no component"


def test_bad_config_stops_before_any_resource(tmp_path) -> None:
    (tmp_path / "Pulumi.acme-dev.yaml").write_text(
        "config:\n  mlops:blueprint: sagemaker\n  mlops:client: acme\n"
        "  mlops:environment: dev\n  mlops:endpoint:\n    mode: gpu\n"
    )
    with pytest.raises(ConfigError, match="endpoint.mode='gpu'"):
        run_plan("acme-dev", root=tmp_path)


def test_the_examples_include_a_cluster_stack() -> None:
    assert CLUSTER_STACKS == ["globex-cluster"]


@pytest.mark.parametrize("stack", CLUSTER_STACKS)
def test_cluster_stacks_export_their_own_outputs_and_pass_their_controls(stack: str) -> None:
    plan = get_plan(stack)
    assert tuple(plan.outputs) == CLUSTER_OUTPUT_NAMES
    assert plan.missing_capabilities == []
    assert set(plan.capabilities_off) == {c.value for c in Capability}
    assert all("client stacks" in why for why in plan.capabilities_off.values())
    assert not plan.failed_controls, [(f.control.id, f.failures) for f in plan.failed_controls]
    waived = {f.control.id for f in plan.findings if f.status in ("waived", "suppressed")}
    assert waived <= {s.control for s in plan.settings.suppressions}
    assert [f for f in plan.findings if f.status == "pass"]
