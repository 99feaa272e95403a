"""Edge export: ONNX parity passes for the example model, fails for a perturbed one; the
register step records the outcome and a failing version is still registered, marked not
exportable; `mlops export` writes the stored graph or says why it cannot."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipelines.local import RunResult, default_tracking_uri
from pipelines.steps.onnx_parity import check_parity, export_model, onnx_probabilities, to_onnx
from tests.serving.conftest import MODEL, register_copy


@pytest.fixture(scope="module")
def fitted(run: RunResult):
    import mlflow.sklearn

    estimator = mlflow.sklearn.load_model(str(run.artifact("train", "model")))
    test_dir = run.artifact("prepare", "test")
    meta = json.loads((test_dir / "schema.json").read_text())
    x = pd.read_parquet(test_dir / "data.parquet")[meta["features"]]
    return estimator, x


def test_parity_passes_for_the_example_model(fitted) -> None:
    estimator, x = fitted
    result = check_parity(estimator, to_onnx(estimator, x.shape[1]), x, tolerance=1e-4)
    assert result.exportable, result.reason
    assert 0.0 <= result.max_abs_diff <= 1e-4
    assert result.rows == len(x)


def test_parity_fails_for_a_perturbed_model(fitted) -> None:
    estimator, x = fitted
    perturbed = copy.deepcopy(estimator)
    perturbed[-1].coef_ = perturbed[-1].coef_ * 1.05  # a 5% drift in the exported weights
    result = check_parity(estimator, to_onnx(perturbed, x.shape[1]), x, tolerance=1e-4)
    assert not result.exportable
    assert result.max_abs_diff > 1e-4
    assert "parity failed" in result.reason and "export.tolerance 0.0001" in result.reason


def test_a_model_skl2onnx_cannot_convert_is_not_exportable_with_the_reason(
    run: RunResult, tmp_path: Path
) -> None:
    class Opaque:
        def predict_proba(self, x):  # pragma: no cover - never called
            return np.zeros((len(x), 2))

    from pipelines.steps.onnx_parity import NotExportable

    with pytest.raises(NotExportable, match="skl2onnx cannot convert Opaque"):
        to_onnx(Opaque(), 30)


def test_register_stores_the_onnx_graph_and_parity_with_the_version(
    run: RunResult, tmp_path: Path
) -> None:
    client = MlflowClient(tracking_uri=run.tracking_uri, registry_uri=run.tracking_uri)
    version = client.get_model_version(MODEL, "1")
    assert version.tags["onnx_exportable"] == "true"
    assert float(version.tags["onnx_max_abs_diff"]) <= float(version.tags["onnx_tolerance"])
    export = run.registration["lineage"]["export"]
    assert export["exportable"] is True and export["rows"] > 100
    graph = Path(client.download_artifacts(version.run_id, "onnx/model.onnx", str(tmp_path)))
    x = pd.read_parquet(run.artifact("prepare", "test") / "data.parquet")[export["features"]]
    probabilities = onnx_probabilities(graph.read_bytes(), x.to_numpy())
    assert probabilities.shape == (len(x), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_a_version_failing_parity_is_registered_but_marked_not_exportable(
    run: RunResult, tmp_path: Path
) -> None:
    home = tmp_path / "strict"
    result = register_copy(run, home, "acme-classifier", tolerance=1e-12)
    assert result["registered"] and result["version"] == 1
    uri = default_tracking_uri(home)
    tags = MlflowClient(uri, uri).get_model_version("acme-classifier", "1").tags
    assert tags["onnx_exportable"] == "false"
    assert tags["onnx_reason"].startswith("parity failed") and "1e-12" in tags["onnx_reason"]
    assert result["lineage"]["export"]["onnx_file"] == ""

    from mlops.cli_serving import app

    out = tmp_path / "m.onnx"
    cli = CliRunner().invoke(
        app,
        ["export", "--model-version", "1", "--format", "onnx", "-o", str(out),
         "--stack", "acme-dev", "--workdir", str(home)],
    )  # fmt: skip
    assert cli.exit_code == 1
    assert "version 1 is marked not exportable: parity failed" in " ".join(cli.output.split())
    assert not out.exists()


def test_cli_export_writes_the_stored_graph_and_refuses_bad_requests(
    run: RunResult, tmp_path: Path
) -> None:
    from mlops.cli_serving import app

    home = tmp_path / "acme"
    register_copy(run, home, "acme-classifier")
    out = tmp_path / "edge" / "model.onnx"
    ok = CliRunner().invoke(
        app,
        ["export", "--model-version", "1", "--format", "onnx", "-o", str(out),
         "--stack", "acme-dev", "--workdir", str(home)],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    x = pd.read_parquet(run.artifact("prepare", "test") / "data.parquet").drop(columns="target")
    assert onnx_probabilities(out.read_bytes(), x.to_numpy()).shape == (len(x), 2)

    missing = CliRunner().invoke(
        app,
        ["export", "--model-version", "9", "-o", str(tmp_path / "n.onnx"),
         "--stack", "acme-dev", "--workdir", str(home)],
    )  # fmt: skip
    assert missing.exit_code == 1 and "version 9 is not in the registry" in missing.output
    wrong = CliRunner().invoke(
        app, ["export", "--model-version", "1", "--format", "tflite", "-o", str(out)]
    )
    assert wrong.exit_code == 2 and "'tflite' is not one of onnx" in wrong.output


def test_export_model_writes_report_and_graph_only_when_parity_passes(
    run: RunResult, tmp_path: Path
) -> None:
    model, test = run.artifact("train", "model"), run.artifact("prepare", "test")
    good = export_model(model, test, tmp_path / "good", tolerance=1e-4)
    bad = export_model(model, test, tmp_path / "bad", tolerance=1e-12)
    assert good.exportable and (tmp_path / "good" / "model.onnx").is_file()
    assert not bad.exportable and not (tmp_path / "bad" / "model.onnx").exists()
    report = json.loads((tmp_path / "bad" / "export.json").read_text())
    assert report["exportable"] is False and report["reason"] == bad.reason
