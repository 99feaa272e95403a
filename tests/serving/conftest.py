"""One local pipeline run per session registers the champion that the batch, export and
catalog tests use (the real register step, a sqlite MLflow registry, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.definition import PipelineSettings
from pipelines.local import RunResult, run_local

MODEL = "serving-classifier"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="session")
def run(workdir: Path) -> RunResult:
    result = run_local(PipelineSettings(client="serving"), workdir=workdir, progress=False)
    assert result.status == "registered", result.reason
    return result


def register_copy(run: RunResult, home: Path, model_name: str, *, tolerance: float = 1e-4) -> dict:
    """Register the session run's model under `model_name` in a registry under `home`, with
    the real register step (ONNX export and parity included)."""
    from pipelines.local import default_tracking_uri
    from pipelines.steps.register import register

    (home / "mlflow").mkdir(parents=True, exist_ok=True)
    return register(
        model=run.artifact("train", "model"),
        evaluation=run.artifact("evaluate", "evaluation"),
        gate=run.artifact("quality-gate", "gate"),
        report=run.artifact("validate-data", "report"),
        baseline=run.artifact("prepare", "baseline"),
        test=run.artifact("prepare", "test"),
        model_name=model_name,
        approval_status="approved",
        tracking_uri=default_tracking_uri(home),
        artifact_root=(home / "mlflow" / "artifacts").as_uri(),
        pipeline_run_id=f"copy-{model_name}",
        onnx_tolerance=tolerance,
    )
