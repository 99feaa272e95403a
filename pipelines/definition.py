"""The one pipeline definition: steps, their entry points, inputs, outputs and parameters.

Every target (SageMaker, Azure ML, Argo, this machine) is compiled from `PIPELINE` and a
`PipelineSettings`. A step is a plain Python module run as ``python -m <module> --<arg> PATH``;
its command line is derived from the step's declared inputs, outputs and parameters, so the
compilers never hand-write arguments and cannot drift from the step code.

    validate-data -> prepare -> train -> evaluate -> quality-gate -> register
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from core.config import CHUNK_ROWS_RANGE, MAX_TRAIN_ROWS_RANGE, StackSettings
from core.names import model_name

Tier = Literal["dev", "staging", "prod"]
Approval = Literal["auto", "manual"]
StepKind = Literal["processing", "training", "register"]
ParamType = Literal["string", "float", "integer"]

TIERS: tuple[str, ...] = ("dev", "staging", "prod")
APPROVALS: tuple[str, ...] = ("auto", "manual")
GATE_METRICS: tuple[str, ...] = ("roc_auc", "accuracy", "f1")
DEFAULT_HYPERPARAMETERS: Mapping[str, Any] = MappingProxyType({"C": 1.0, "max_iter": 1000})


@dataclass(frozen=True)
class PipelineSettings:
    """Everything a pipeline run or compilation needs; defaults are the dev tier's."""

    environment: Tier = "dev"
    """Environment tier; decides the default approval (dev automatic, staging/prod manual)."""
    approval: Approval | None = None
    """'auto' approves a registered version at once, 'manual' leaves it pending; None = by tier."""
    client: str = "local"
    """Client (tenant) name; prefixes the registered model name."""
    model_name: str = ""
    """Registered model name; empty means '<client>-classifier'."""
    gate_metric: str = "roc_auc"
    """Metric the quality gate reads from evaluation.json: roc_auc, accuracy or f1."""
    gate_minimum: float = 0.9
    """Absolute floor for the gate metric."""
    gate_max_regression: float = 0.01
    """How much worse than the current champion a challenger may be and still pass."""
    drift_threshold: float = 0.2
    """Population stability index above which a feature counts as drifted."""
    hyperparameters: Mapping[str, Any] = field(default_factory=lambda: DEFAULT_HYPERPARAMETERS)
    """Hyperparameters passed to the trainer (JSON-serialisable scalars)."""
    trainer: str = "pipelines.model:build_model"
    """'module:callable' returning an unfitted scikit-learn-style estimator."""
    contract: str = ""
    """Data contract file; empty means the packaged breast-cancer contract."""
    test_size: float = 0.25
    """Fraction of the rows held out for evaluation."""
    seed: int = 42
    """Random seed for the split and the trainer."""
    training_instance_type: str = "ml.m5.large"
    """Instance (VM) type for the training step on the cloud targets."""
    processing_instance_type: str = "ml.t3.medium"
    """Instance type for the validate, prepare, evaluate and gate steps on SageMaker."""
    spot: bool = False
    """Train on spot (AWS) / low-priority (Azure) capacity."""
    max_runtime_minutes: int = 120
    """Upper bound on one training job."""
    image_uri: str = "ghcr.io/example/mlops-pipeline:latest"
    """Container image holding this package; every step runs in it."""
    serving_image_uri: str = ""
    """MLflow serving image for the SageMaker model package; empty means image_uri."""
    schedule_cron: str | None = None
    """Retraining schedule (cron), consumed by the platform components."""
    permutation_repeats: int = 5
    """Repeats of permutation importance in the evaluate step (explain.permutationRepeats)."""
    clarify: bool = False
    """Add a SageMaker Clarify explainability step (explain.clarify; SageMaker only)."""
    export_onnx: bool = True
    """The register step exports the model to ONNX and checks parity (export.onnx)."""
    onnx_tolerance: float = 1e-4
    """Largest allowed |probability difference| of the ONNX export (export.tolerance)."""
    chunk_rows: int = 1_000_000
    """Rows the data steps hold at once: validate-data, prepare, evaluate and the register
    step's ONNX parity read the batch and the splits this many rows at a time
    (training.chunkRows)."""
    max_train_rows: int = 1_000_000
    """Most rows the trainer is fitted on; a larger train split is sampled, uniform and
    seeded (training.maxRows)."""

    @property
    def approval_mode(self) -> str:
        """The approval in force: the explicit one, else auto for dev and manual above."""
        if self.approval:
            return self.approval
        return "auto" if self.environment == "dev" else "manual"

    @property
    def registered_model_name(self) -> str:
        return self.model_name or model_name(self.client)

    def replace(self, **changes: Any) -> PipelineSettings:
        """A copy with `changes` applied (validated)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        settings = PipelineSettings(**values)
        validate_settings(settings)
        return settings


class SettingsError(ValueError):
    """A PipelineSettings value is out of its domain; the message says how to fix it."""


def validate_settings(settings: PipelineSettings) -> None:
    """Raise SettingsError naming every bad field, its value, the allowed values and the fix."""
    problems: list[str] = []

    def bad(name: str, value: Any, allowed: str, fix: str) -> None:
        problems.append(f"{name}={value!r} is not {allowed}; {fix}")

    if settings.environment not in TIERS:
        bad("environment", settings.environment, "one of " + ", ".join(TIERS), "set environment")
    if settings.approval is not None and settings.approval not in APPROVALS:
        bad("approval.mode", settings.approval, "one of auto, manual", "set approval.mode")
    if settings.gate_metric not in GATE_METRICS:
        bad(
            "gate.metric",
            settings.gate_metric,
            "one of " + ", ".join(GATE_METRICS),
            "set gate.metric",
        )
    if not 0.0 <= settings.gate_minimum <= 1.0:
        bad("gate.minimum", settings.gate_minimum, "within [0, 1]", "set gate.minimum")
    if not 0.0 <= settings.gate_max_regression <= 1.0:
        bad(
            "gate.max_regression",
            settings.gate_max_regression,
            "within [0, 1]",
            "set gate.max_regression",
        )
    if settings.drift_threshold <= 0:
        bad("drift.threshold", settings.drift_threshold, "a positive PSI", "set drift.threshold")
    if not 0.05 <= settings.test_size <= 0.5:
        bad("test_size", settings.test_size, "within [0.05, 0.5]", "pass test_size")
    if settings.max_runtime_minutes < 1:
        bad(
            "training.max_runtime_minutes",
            settings.max_runtime_minutes,
            "at least 1",
            "set training.max_runtime_minutes",
        )
    if not 1 <= settings.permutation_repeats <= 100:
        bad(
            "explain.permutation_repeats",
            settings.permutation_repeats,
            "within [1, 100]",
            "set explain.permutationRepeats",
        )
    low, high = CHUNK_ROWS_RANGE
    if not (isinstance(settings.chunk_rows, int) and low <= settings.chunk_rows <= high):
        bad(
            "training.chunk_rows",
            settings.chunk_rows,
            f"a whole number within [{low:,}, {high:,}]",
            "set training.chunkRows (rows held at once; lower it to use less memory)",
        )
    low, high = MAX_TRAIN_ROWS_RANGE
    if not (isinstance(settings.max_train_rows, int) and low <= settings.max_train_rows <= high):
        bad(
            "training.max_rows",
            settings.max_train_rows,
            f"a whole number within [{low:,}, {high:,}]",
            "set training.maxRows (most rows the model is fitted on)",
        )
    if not 0.0 < settings.onnx_tolerance <= 0.5:
        bad("export.tolerance", settings.onnx_tolerance, "within (0, 0.5]", "set export.tolerance")
    if ":" not in settings.trainer:
        bad(
            "trainer",
            settings.trainer,
            "of the form 'module:callable'",
            "point trainer at a function returning an estimator",
        )
    try:
        json.dumps(dict(settings.hyperparameters))
    except (TypeError, ValueError):
        bad(
            "hyperparameters",
            settings.hyperparameters,
            "JSON-serialisable",
            "use numbers, strings and booleans",
        )
    if problems:
        raise SettingsError("invalid pipeline settings:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Param:
    """A typed pipeline parameter; every target exposes it under `name` (or its CamelCase)."""

    name: str
    type: ParamType
    description: str

    @property
    def camel(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Input:
    """A step input: a path fed from a parameter (`param:x`) or another step's output."""

    name: str
    source: str
    """'param:<name>' or '<step>.<output>'."""
    optional: bool = False
    order_only: bool = False
    """Passed so every platform orders the steps, but not part of the local cache key."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def from_param(self) -> str | None:
        return self.source.split(":", 1)[1] if self.source.startswith("param:") else None

    @property
    def from_step(self) -> tuple[str, str] | None:
        if self.from_param is not None:
            return None
        step, output = self.source.split(".", 1)
        return step, output


@dataclass(frozen=True)
class Step:
    """One step: a module with a `main(argv)`, directory inputs/outputs and parameter flags."""

    name: str
    module: str
    kind: StepKind
    description: str
    inputs: tuple[Input, ...] = ()
    outputs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()

    @property
    def upstream(self) -> tuple[str, ...]:
        """Every step this one waits for (the sources of its inputs)."""
        return tuple(dict.fromkeys(i.from_step[0] for i in self.inputs if i.from_step))

    @property
    def camel(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-"))

    @property
    def command(self) -> list[str]:
        return ["python", "-m", self.module]

    def output_flag(self, output: str) -> str:
        return "--" + output.replace("_", "-") + "-dir"


PARAMS: tuple[Param, ...] = (
    Param("data_uri", "string", "Location of the training batch (CSV or Parquet file/folder)."),
    Param(
        "baseline_uri",
        "string",
        "Baseline statistics of the last accepted training data (folder with baseline.json).",
    ),
    Param("contract", "string", "Data contract file; empty = packaged breast-cancer contract."),
    Param("drift_threshold", "float", "PSI above which a feature counts as drifted."),
    Param("test_size", "float", "Fraction of rows held out for evaluation."),
    Param("seed", "integer", "Random seed for the split and the trainer."),
    Param("trainer", "string", "'module:callable' returning an unfitted estimator."),
    Param("hyperparameters", "string", "JSON object of hyperparameters for the trainer."),
    Param("gate_metric", "string", "Metric the quality gate checks: roc_auc, accuracy or f1."),
    Param("gate_minimum", "float", "Absolute floor for the gate metric."),
    Param("gate_max_regression", "float", "Allowed drop against the current champion."),
    Param("champion_metric", "float", "Champion's gate metric; negative = no champion yet."),
    Param("model_name", "string", "Registered model name."),
    Param("approval_status", "string", "'approved' or 'pending' for the new version."),
    Param("permutation_repeats", "integer", "Repeats of permutation importance (evaluate)."),
    Param("export_onnx", "integer", "1: export the model to ONNX at registration, 0: do not."),
    Param("onnx_tolerance", "float", "Largest allowed |probability difference| of the ONNX."),
    Param("chunk_rows", "integer", "Rows the data steps hold at once (bounds their memory)."),
    Param("max_train_rows", "integer", "Most rows the trainer is fitted on (seeded sample above)."),
)
PARAM_BY_NAME: Mapping[str, Param] = MappingProxyType({p.name: p for p in PARAMS})

PIPELINE: tuple[Step, ...] = (
    Step(
        "validate-data",
        "pipelines.steps.validate",
        "processing",
        "Check the batch against the data contract (pandera) and for drift (PSI, KS).",
        inputs=(
            Input("data", "param:data_uri"),
            Input("baseline", "param:baseline_uri", optional=True),
        ),
        outputs=("report",),
        params=("contract", "drift_threshold", "chunk_rows"),
    ),
    Step(
        "prepare",
        "pipelines.steps.prepare",
        "processing",
        "Split into train/test, select features, write baseline statistics of the train split.",
        inputs=(
            Input("data", "param:data_uri"),
            Input("report", "validate-data.report", order_only=True),
        ),
        outputs=("train", "test", "baseline"),
        params=("contract", "test_size", "seed", "chunk_rows"),
    ),
    Step(
        "train",
        "pipelines.steps.train",
        "training",
        "Fit the estimator and save it in MLflow format.",
        inputs=(Input("train", "prepare.train"),),
        outputs=("model",),
        params=("trainer", "hyperparameters", "seed", "max_train_rows"),
    ),
    Step(
        "evaluate",
        "pipelines.steps.evaluate",
        "processing",
        "Accuracy, F1, ROC AUC to evaluation.json; ROC curve and confusion matrix as PNG.",
        inputs=(Input("model", "train.model"), Input("test", "prepare.test")),
        outputs=("evaluation",),
        params=("permutation_repeats", "seed", "chunk_rows"),
    ),
    Step(
        "quality-gate",
        "pipelines.steps.gate",
        "processing",
        "Absolute threshold and no worse than the champion by more than the margin.",
        inputs=(Input("evaluation", "evaluate.evaluation"),),
        outputs=("gate",),
        params=("gate_metric", "gate_minimum", "gate_max_regression", "champion_metric"),
    ),
    Step(
        "register",
        "pipelines.steps.register",
        "register",
        "Register the MLflow model with lineage and the tier's approval status.",
        inputs=(
            Input("model", "train.model"),
            Input("evaluation", "evaluate.evaluation"),
            Input("gate", "quality-gate.gate"),
            Input("report", "validate-data.report"),
            Input("baseline", "prepare.baseline"),
            Input("test", "prepare.test"),
        ),
        outputs=("registration",),
        params=("model_name", "approval_status", "export_onnx", "onnx_tolerance", "chunk_rows"),
    ),
)
STEP_BY_NAME: Mapping[str, Step] = MappingProxyType({s.name: s for s in PIPELINE})


def parameter_defaults(
    settings: PipelineSettings, *, data_uri: str = "", baseline_uri: str = ""
) -> dict[str, Any]:
    """Default value of every pipeline parameter under `settings`."""
    validate_settings(settings)
    return {
        "data_uri": data_uri,
        "baseline_uri": baseline_uri,
        "contract": settings.contract,
        "drift_threshold": float(settings.drift_threshold),
        "test_size": float(settings.test_size),
        "seed": int(settings.seed),
        "trainer": settings.trainer,
        "hyperparameters": json.dumps(dict(settings.hyperparameters), sort_keys=True),
        "gate_metric": settings.gate_metric,
        "gate_minimum": float(settings.gate_minimum),
        "gate_max_regression": float(settings.gate_max_regression),
        "champion_metric": -1.0,
        "model_name": settings.registered_model_name,
        "approval_status": "approved" if settings.approval_mode == "auto" else "pending",
        "permutation_repeats": int(settings.permutation_repeats),
        "export_onnx": 1 if settings.export_onnx else 0,
        "onnx_tolerance": float(settings.onnx_tolerance),
        "chunk_rows": int(settings.chunk_rows),
        "max_train_rows": int(settings.max_train_rows),
    }


def step_arguments(
    step: Step, *, inputs: Mapping[str, Any], outputs: Mapping[str, Any], params: Mapping[str, Any]
) -> list[Any]:
    """The argv of `step` given concrete input/output paths and parameter values.

    Each target passes its own placeholders (container paths, `{{inputs.parameters.x}}`,
    `${{inputs.x}}`) as values; the flag names come from the definition alone.
    """

    def text(value: Any) -> Any:  # platform placeholders (pipeline variables) pass through
        return str(value) if isinstance(value, (str, int, float)) else value

    argv: list[Any] = []
    for inp in step.inputs:
        if inp.name in inputs:
            argv += [inp.flag, text(inputs[inp.name])]
        elif not inp.optional:
            raise KeyError(f"step {step.name!r} needs input {inp.name!r}")
    for out in step.outputs:
        argv += [step.output_flag(out), text(outputs[out])]
    for name in step.params:
        argv += [PARAM_BY_NAME[name].flag, text(params[name])]
    return argv


def pipeline_settings_from_stack(stack: StackSettings, **overrides: Any) -> PipelineSettings:
    """The pipeline's settings from a validated stack config (every field read by name, so a
    renamed config field fails here instead of falling back to a default)."""
    values: dict[str, Any] = {
        "environment": stack.environment,
        "client": stack.client,
        "approval": stack.approval.mode,
        "gate_metric": stack.gate.metric,
        "gate_minimum": float(stack.gate.minimum),
        "gate_max_regression": float(stack.gate.max_regression),
        "drift_threshold": float(stack.drift.threshold),
        "training_instance_type": stack.training.instance_type,
        "spot": bool(stack.training.spot),
        "max_runtime_minutes": int(stack.training.max_runtime_minutes),
        "schedule_cron": stack.schedule.cron,
        "permutation_repeats": int(stack.explain.permutation_repeats),
        "clarify": bool(stack.explain.clarify),
        "export_onnx": bool(stack.export.onnx),
        "onnx_tolerance": float(stack.export.tolerance),
        "chunk_rows": int(stack.training.chunk_rows),
        "max_train_rows": int(stack.training.max_rows),
    }
    values.update(overrides)
    settings = PipelineSettings(**values)
    validate_settings(settings)
    return settings
