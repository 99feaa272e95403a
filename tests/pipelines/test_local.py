"""The local runner end to end: registration with lineage, caching, and the gates that stop a
run before anything is registered."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipelines.definition import PIPELINE, PipelineSettings
from pipelines.local import RunResult, run_local


def test_first_run_registers_version_1_with_complete_lineage(first_run: RunResult) -> None:
    assert first_run.status == "registered", first_run.reason
    assert first_run.ran == [s.name for s in PIPELINE]
    assert first_run.registered_version == 1
    assert first_run.metrics["roc_auc"] > 0.95
    assert set(first_run.metrics) == {"accuracy", "f1", "roc_auc"}

    client = MlflowClient(tracking_uri=first_run.tracking_uri, registry_uri=first_run.tracking_uri)
    version = client.get_model_version("test-classifier", "1")
    for tag in (
        "data_hash",
        "code_version",
        "environment_fingerprint",
        "pipeline_run_id",
        "model_hash",
    ):
        assert version.tags.get(tag), f"lineage tag {tag} missing"
    assert len(version.tags["data_hash"]) == 64
    assert version.tags["pipeline_run_id"] == first_run.run_id
    assert version.tags["approval_status"] == "approved"  # dev tier: automatic approval
    assert str(client.get_model_version_by_alias("test-classifier", "champion").version) == "1"
    run = client.get_run(version.run_id)
    assert run.data.params["hp_C"] == "1.0"
    assert run.data.params["trainer"] == "pipelines.model:build_model"
    assert run.data.metrics["roc_auc"] == pytest.approx(first_run.metrics["roc_auc"])


def test_first_run_writes_evaluation_json_and_png_plots(first_run: RunResult) -> None:
    evaluation_dir = first_run.artifact("evaluate", "evaluation")
    evaluation = json.loads((evaluation_dir / "evaluation.json").read_text())
    assert evaluation["metrics"] == first_run.metrics
    for name in ("roc_curve.png", "confusion_matrix.png"):
        assert (evaluation_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model_dir = first_run.artifact("train", "model")
    assert (model_dir / "MLmodel").is_file()


def test_registered_model_loads_and_predicts_through_mlflow(
    first_run: RunResult, good_frame: pd.DataFrame
) -> None:
    import mlflow.pyfunc

    source = first_run.registration["source"]
    model = mlflow.pyfunc.load_model(source)
    predictions = model.predict(good_frame.drop(columns="target").head(5))
    assert len(predictions) == 5


def test_rerun_with_unchanged_inputs_is_served_from_cache(
    first_run: RunResult, local_workdir: Path
) -> None:
    again = run_local(PipelineSettings(client="test"), workdir=local_workdir, progress=False)
    assert again.status == "registered", again.reason
    assert {"prepare", "train", "evaluate"} <= set(again.cached)
    assert again.step("train").key == first_run.step("train").key
    # the same model folder is not registered twice
    assert again.registered_version == 1
    assert again.registration["reused"] is True


def _bad(frame: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    return path


def _missing_column(f: pd.DataFrame) -> pd.DataFrame:
    return f.drop(columns="mean_radius")


def _wrong_type(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f["mean_texture"] = f["mean_texture"].astype(object)
    f.loc[3, "mean_texture"] = "high"
    return f


def _nulls(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.loc[[1, 2], "worst_area"] = None
    return f


def _out_of_range(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.loc[0, "mean_smoothness"] = -1.0
    return f


def _label_domain(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.loc[0, "target"] = 7
    return f


@pytest.mark.parametrize(
    ("mutate", "column", "rule"),
    [
        (_missing_column, "mean_radius", "required column missing"),
        (_wrong_type, "mean_texture", "wrong type"),
        (_nulls, "worst_area", "nulls not allowed"),
        (_out_of_range, "mean_smoothness", "out of range"),
        (_label_domain, "target", "outside label domain"),
    ],
)
def test_bad_batch_stops_before_training_naming_column_and_rule(
    mutate, column: str, rule: str, good_frame: pd.DataFrame, tmp_path: Path
) -> None:
    result = run_local(
        PipelineSettings(client="bad"),
        workdir=tmp_path / "wd",
        data=_bad(mutate(good_frame), tmp_path),
        progress=False,
    )
    assert result.status == "failed"
    assert [s.name for s in result.steps] == ["validate-data"]
    assert result.steps[0].status == "failed"
    assert f"column '{column}'" in result.reason and rule in result.reason
    assert result.registered_version is None
    assert any(p["column"] == column for p in result.validation["problems"])


def test_drifted_batch_stops_before_registration(
    first_run: RunResult, local_workdir: Path, tmp_path: Path
) -> None:
    from pipelines.data import synthetic

    drifted = synthetic(400, seed=1, shift=1.5)
    result = run_local(
        PipelineSettings(client="test"),
        workdir=local_workdir,
        data=_bad(drifted, tmp_path),
        progress=False,
    )
    assert result.status == "failed"
    assert result.steps[-1].name == "validate-data"
    assert "distribution drift, PSI" in result.reason
    assert "column 'mean_radius'" in result.reason
    assert result.validation["drift"]["status"] == "failed"
    client = MlflowClient(tracking_uri=result.tracking_uri, registry_uri=result.tracking_uri)
    assert len(client.search_model_versions("name = 'test-classifier'")) == 1


def test_undrifted_synthetic_batch_passes_drift_check(
    first_run: RunResult, tmp_path: Path, good_frame: pd.DataFrame
) -> None:
    from pipelines.steps.validate import drift_report, feature_statistics

    baseline = {
        "features": {
            c: feature_statistics(good_frame[c]) for c in good_frame.columns if c != "target"
        }
    }
    report = drift_report(good_frame.sample(300, random_state=0), baseline, threshold=0.2)
    assert report["status"] == "passed", report["drifted"]


def test_model_below_the_gate_is_not_registered(first_run: RunResult, local_workdir: Path) -> None:
    strict = PipelineSettings(client="strict", gate_minimum=0.9999)
    result = run_local(strict, workdir=local_workdir, progress=False)
    assert result.status == "not-registered"
    assert "below the minimum 0.9999" in result.reason
    assert result.step("register").status == "skipped"
    assert result.registered_version is None
    client = MlflowClient(tracking_uri=result.tracking_uri, registry_uri=result.tracking_uri)
    assert client.search_model_versions("name = 'strict-classifier'") == []


def test_manual_approval_registers_pending_without_moving_champion(
    first_run: RunResult, local_workdir: Path
) -> None:
    prod = PipelineSettings(client="prodlike", environment="prod")
    result = run_local(prod, workdir=local_workdir, progress=False)
    assert result.status == "registered", result.reason
    client = MlflowClient(tracking_uri=result.tracking_uri, registry_uri=result.tracking_uri)
    version = client.get_model_version("prodlike-classifier", str(result.registered_version))
    assert version.tags["approval_status"] == "pending"
    assert version.aliases == []
