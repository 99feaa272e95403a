"""The export-onnx entry point on real data: a passing export writes export.json and
onnx/model.onnx (also from SageMaker's model.tar.gz); an impossible tolerance writes
exportable=false and no graph; metadata values fit the CreateModelPackage API."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from pipelines.data import LABEL, breast_cancer
from pipelines.model import build_model
from pipelines.steps import export_onnx as eo
from pipelines.steps.train import pinned_requirements


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import mlflow.sklearn

    root = tmp_path_factory.mktemp("trained")
    frame = breast_cancer()
    features = [c for c in frame.columns if c != LABEL]
    train, test = frame.iloc[:450], frame.iloc[450:]
    model = build_model({}, seed=7).fit(train[features], train[LABEL])
    model_dir = root / "model"
    # saved as the train step saves it: requirements pinned (MLflow's inference, a subprocess
    # that reloads the model, took 80 % of this fixture) and cloudpickle (MLflow's default,
    # skops, scans every loaded module at import: in a worker holding the providers' lazy
    # modules that loaded all of pulumi_azure_native, 35 s)
    mlflow.sklearn.save_model(
        model,
        str(model_dir),
        pip_requirements=pinned_requirements(),
        serialization_format="cloudpickle",
    )
    test_dir = root / "test"
    test_dir.mkdir()
    test.to_csv(test_dir / "data.csv", index=False)
    (test_dir / "schema.json").write_text(json.dumps({"features": features, "label": LABEL}))
    tarball_dir = root / "tarball"
    tarball_dir.mkdir()
    with tarfile.open(tarball_dir / "model.tar.gz", "w:gz") as tar:
        for file in model_dir.iterdir():
            tar.add(file, arcname=file.name)
    return {"model": model_dir, "test": test_dir, "tarball": tarball_dir}


def _run(trained: dict[str, Path], out: Path, tolerance: str, model: str = "model") -> int:
    return eo.main(
        [
            "--model",
            str(trained[model]),
            "--test",
            str(trained["test"]),
            "--tolerance",
            tolerance,
            "--export-dir",
            str(out),
            "--export-uri",
            "s3://acme-dev-artifacts/pipelines/run-1/export-onnx/export",
        ]
    )


def _value_ok(value: str) -> bool:
    shape = botocore.session.get_session().get_service_model("sagemaker")
    meta = shape.operation_model("CreateModelPackage").input_shape.members[
        "CustomerMetadataProperties"
    ]
    limit = meta.value.metadata
    allowed = re.fullmatch(r"[\w .:/=+\-@]*", value)  # the API's pattern, ASCII spaces
    return bool(allowed) and limit["min"] <= len(value) <= limit["max"]


@pytest.mark.parametrize("model", ["model", "tarball"])
def test_parity_passes_writes_graph_and_report(
    trained: dict[str, Path], tmp_path: Path, model: str
) -> None:
    import numpy as np
    import onnxruntime as ort
    import pandas as pd

    assert _run(trained, tmp_path, "1e-4", model) == 0
    report = json.loads((tmp_path / eo.REPORT_FILE).read_text())
    assert report["exportable"] is True
    assert report["rows"] == 119
    assert 0.0 <= report["max_abs_diff"] <= 1e-4
    assert report["onnx_file"] == "onnx/model.onnx"
    meta = report["metadata"]
    assert meta["onnx_exportable"] == "true"
    assert meta["onnx_uri"] == (
        "s3://acme-dev-artifacts/pipelines/run-1/export-onnx/export/onnx/model.onnx"
    )
    assert float(meta["onnx_max_abs_diff"]) == pytest.approx(report["max_abs_diff"], rel=1e-3)
    assert all(_value_ok(v) for v in meta.values()), meta
    assert not (tmp_path / "onnx" / eo.REPORT_FILE).exists()
    # the stored graph is a working classifier over the test split's features
    x = pd.read_csv(trained["test"] / "data.csv").drop(columns=[LABEL]).to_numpy(np.float32)
    session = ort.InferenceSession(
        (tmp_path / "onnx" / "model.onnx").read_bytes(), providers=["CPUExecutionProvider"]
    )
    (proba,) = session.run(["probabilities"], {"input": x})
    assert proba.shape == (119, 2)


def test_impossible_tolerance_marks_not_exportable(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    assert _run(trained, tmp_path, "1e-12") == 0
    report = json.loads((tmp_path / eo.REPORT_FILE).read_text())
    assert report["exportable"] is False
    assert report["reason"].startswith("parity failed")
    assert report["max_abs_diff"] > 1e-12
    assert not (tmp_path / "onnx" / "model.onnx").exists()
    meta = report["metadata"]
    assert meta["onnx_exportable"] == "false"
    assert meta["onnx_uri"] == eo.NONE
    assert "parity failed" in meta["onnx_reason"]
    assert all(_value_ok(v) for v in meta.values()), meta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "max |p_onnx - p_model| 1.2e-05 > 1e-12; raise",
            "max p_onnx - p_model 1.2e-05 1e-12 raise",
        ),
        ("", eo.NONE),
        ("|;()", eo.NONE),
        ("x" * 300, "x" * 256),
    ],
)
def test_metadata_value_fits_the_api(text: str, expected: str) -> None:
    assert eo.metadata_value(text) == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tolerance": "0"}, "--tolerance 0 is not within (0, 0.5]"),
        ({"test": "missing"}, "no data.csv in"),
        ({"model": "missing"}, "does not exist"),
        ({"model": "empty"}, "neither an MLflow model"),
    ],
)
def test_unusable_inputs_exit_2_with_the_fix(
    trained: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, Any],
    message: str,
) -> None:
    (tmp_path / "empty").mkdir()
    args = {"model": str(trained["model"]), "test": str(trained["test"]), "tolerance": "1e-4"}
    args.update({k: str(tmp_path / v) if k != "tolerance" else v for k, v in change.items()})
    argv = [a for k, v in args.items() for a in (f"--{k}", v)]
    assert eo.main([*argv, "--export-dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / eo.REPORT_FILE).exists()
