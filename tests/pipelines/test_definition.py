"""The definition, the settings and the CLI that reads a stack."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipelines.definition import (
    PARAM_BY_NAME,
    PIPELINE,
    PipelineSettings,
    SettingsError,
    pipeline_settings_from_stack,
    validate_settings,
)
from pipelines.steps.gate import decide


def test_every_step_input_has_a_source_and_every_param_is_declared() -> None:
    outputs = {(s.name, o) for s in PIPELINE for o in s.outputs}
    for step in PIPELINE:
        for inp in step.inputs:
            assert (
                (inp.from_param in PARAM_BY_NAME) if inp.from_param else (inp.from_step in outputs)
            ), (step.name, inp.name)
        assert all(p in PARAM_BY_NAME for p in step.params), step.name
    assert [s.name for s in PIPELINE] == [
        "validate-data",
        "prepare",
        "train",
        "evaluate",
        "quality-gate",
        "register",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"environment": "qa"}, "environment='qa' is not one of dev, staging, prod"),
        ({"approval": "sometimes"}, "approval.mode='sometimes' is not one of auto, manual"),
        ({"gate_metric": "loss"}, "gate.metric='loss' is not one of roc_auc, accuracy, f1"),
        ({"gate_minimum": 1.5}, "gate.minimum=1.5 is not within [0, 1]"),
        ({"drift_threshold": 0}, "drift.threshold=0 is not a positive PSI"),
        ({"trainer": "mymodel"}, "trainer='mymodel' is not of the form 'module:callable'"),
    ],
)
def test_bad_settings_name_field_value_and_fix(changes: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("(", r"\(")):
        validate_settings(PipelineSettings(**changes))


def test_approval_follows_the_tier_unless_set() -> None:
    assert PipelineSettings(environment="dev").approval_mode == "auto"
    assert PipelineSettings(environment="staging").approval_mode == "manual"
    assert PipelineSettings(environment="prod", approval="auto").approval_mode == "auto"


def test_settings_from_a_real_stack_file() -> None:
    from core.config import load_stack

    stack = load_stack("acme-dev")
    settings = pipeline_settings_from_stack(stack)
    assert settings.environment == stack.environment
    assert settings.client == stack.client == "acme"
    assert settings.gate_minimum == stack.gate.minimum
    assert settings.drift_threshold == stack.drift.threshold
    assert settings.training_instance_type == stack.training.instance_type
    assert settings.registered_model_name == "acme-classifier"


def test_settings_follow_the_stack_tier_and_keys() -> None:
    from core.config import load_stack

    stack = load_stack("acme-prod")
    settings = pipeline_settings_from_stack(stack)
    assert settings.approval_mode == "manual" == stack.approval.mode
    assert settings.gate_metric == stack.gate.metric
    assert settings.spot is stack.training.spot is False


def test_settings_refuse_an_untyped_mapping() -> None:
    # Typed settings only: a plain mapping (or a renamed field) fails instead of silently
    # falling back to the pipeline's defaults.
    with pytest.raises(AttributeError):
        pipeline_settings_from_stack({"environment": "prod", "gate": {"minimum": 0.8}})


@pytest.mark.parametrize(
    ("value", "champion", "passed", "reason"),
    [
        (0.95, None, True, "all gate rules pass"),
        (0.85, None, False, "below the minimum"),
        (0.95, 0.97, False, "worse than the champion's 0.9700"),
        (0.965, 0.97, True, "all gate rules pass"),
    ],
)
def test_gate_rules(value: float, champion: float | None, passed: bool, reason: str) -> None:
    decision = decide(
        {"roc_auc": value}, metric="roc_auc", minimum=0.9, max_regression=0.01, champion=champion
    )
    assert decision["passed"] is passed
    assert reason in "; ".join(decision["reasons"])


def test_cli_compile_argo_writes_a_workflow_template(tmp_path: Path) -> None:
    from mlops.cli_pipeline import app

    result = CliRunner().invoke(
        app, ["compile", "--target", "argo", "--stack", "globex-dev", "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load((tmp_path / "argo" / "workflow_template.yaml").read_text())
    assert manifest["kind"] == "WorkflowTemplate"
    assert manifest["metadata"]["namespace"] == "globex-dev-ml"


def test_cli_unknown_stack_says_how_to_fix() -> None:
    from mlops.cli_pipeline import app

    result = CliRunner().invoke(app, ["compile", "--target", "argo", "--stack", "nope-dev"])
    assert result.exit_code == 2
    assert "nope-dev" in result.output
