"""Edge export: a registered model as ONNX (skl2onnx), checked against the original.

    result = export_model(model_dir, test_dir, out_dir, tolerance=1e-4)

The register step calls `export_model` on the model it registers and the evaluation split:
the ONNX graph is run with onnxruntime on every evaluation row (float32, as edge runtimes do)
and its class probabilities are compared with the original estimator's. The largest absolute
difference must not exceed `export.tolerance`. Either way the outcome is written to
`export.json` and recorded on the version; the graph itself (`model.onnx`) is stored with the
version only when it passed. A model that cannot be converted or fails parity is still
registered, marked not exportable with the reason, so real-time and batch serving are never
held back by the edge format.

`mlops export --model-version V --format onnx -o FILE` fetches the stored graph
(`fetch_onnx`), refusing a version marked not exportable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.steps._common import DEFAULT_CHUNK_ROWS, StepError, iter_chunks, split_file

ONNX_FILE = "model.onnx"
REPORT_FILE = "export.json"
ARTIFACT_PATH = "onnx"
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
INPUT_NAME = "input"


class NotExportable(RuntimeError):
    """The model cannot be exported to ONNX; the message says why and what to do."""


@dataclass(frozen=True)
class ExportResult:
    """Outcome of an export and its parity check, as stored with the version."""

    exportable: bool
    reason: str
    tolerance: float
    max_abs_diff: float | None = None
    rows: int = 0
    features: tuple[str, ...] = ()
    opset: int = TARGET_OPSET[""]
    onnx_file: str = ""
    """Path of model.onnx in the output folder; empty when not exportable."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = list(self.features)
        return out

    def tags(self) -> dict[str, str]:
        """Registry tags: onnx_exportable, onnx_reason, onnx_max_abs_diff, onnx_tolerance."""
        diff = "" if self.max_abs_diff is None else f"{self.max_abs_diff:.3e}"
        return {
            "onnx_exportable": "true" if self.exportable else "false",
            "onnx_reason": self.reason[:4000],
            "onnx_max_abs_diff": diff,
            "onnx_tolerance": f"{self.tolerance:g}",
        }


def to_onnx(estimator: Any, n_features: int) -> bytes:
    """The estimator as a serialised ONNX graph with one float32 input of `n_features`."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:
        raise NotExportable(
            "skl2onnx is not installed where the pipeline runs; add skl2onnx and onnxruntime "
            "to the pipeline image"
        ) from exc
    try:
        graph = convert_sklearn(
            estimator,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            options={"zipmap": False},
            target_opset=dict(TARGET_OPSET),
        )
    except Exception as exc:  # noqa: BLE001 - skl2onnx raises many types; the reason is kept
        raise NotExportable(
            f"skl2onnx cannot convert {type(estimator).__name__}: {exc}".strip()
        ) from exc
    return graph.SerializeToString()


def onnx_probabilities(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Class probabilities of the ONNX graph on `x` (rows x features), with onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise NotExportable(
            "onnxruntime is not installed where the pipeline runs, so parity cannot be "
            "checked; add onnxruntime to the pipeline image"
        ) from exc
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if "probabilities" not in names:
        raise NotExportable(f"the ONNX graph has no probabilities output (outputs: {names})")
    (probabilities,) = session.run(["probabilities"], {INPUT_NAME: x.astype(np.float32)})
    return np.asarray(probabilities, dtype=np.float64)


def max_probability_diff(estimator: Any, onnx_bytes: bytes, x: Any) -> float:
    """Largest |p_onnx - p_original| over every row and class of `x`."""
    if not hasattr(estimator, "predict_proba"):
        raise NotExportable(
            f"{type(estimator).__name__} has no predict_proba, so probability parity cannot "
            "be checked; use a classifier with predict_proba"
        )
    expected = np.asarray(estimator.predict_proba(x), dtype=np.float64)
    got = onnx_probabilities(onnx_bytes, np.asarray(x, dtype=np.float64))
    if got.shape != expected.shape:
        raise NotExportable(
            f"ONNX probabilities have shape {got.shape}, the model's {expected.shape}"
        )
    return float(np.max(np.abs(got - expected))) if expected.size else 0.0


def check_parity(
    estimator: Any, onnx_bytes: bytes, x: Any, tolerance: float, features: tuple[str, ...] = ()
) -> ExportResult:
    """Parity of an ONNX graph with `estimator` on `x` (rows, or an iterable of chunks of
    rows, one in memory at a time): passed when the max diff over every row <= tolerance."""
    parts = [x] if hasattr(x, "shape") else x
    rows, diffs = 0, []
    try:
        for part in parts:
            rows += len(part)
            diffs.append(max_probability_diff(estimator, onnx_bytes, part))
            del part  # before the next chunk is read
    except NotExportable as exc:
        return ExportResult(False, str(exc), tolerance, rows=rows, features=features)
    finite = all(np.isfinite(d) for d in diffs)
    diff = max(diffs, default=0.0) if finite else float("nan")
    if not finite or diff > tolerance:
        reason = (
            f"parity failed: max |p_onnx - p_model| {diff:.3e} > export.tolerance "
            f"{tolerance:g} on {rows} evaluation rows; serve this version in real time or "
            "batch, or raise export.tolerance if the difference is acceptable at the edge"
        )
        return ExportResult(False, reason, tolerance, diff, rows, features)
    reason = f"parity passed: max |p_onnx - p_model| {diff:.3e} <= {tolerance:g}"
    return ExportResult(True, reason, tolerance, diff, rows, features)


def export_model(
    model_dir: Path,
    test_dir: Path,
    out_dir: Path,
    *,
    tolerance: float,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> ExportResult:
    """Export the MLflow model at `model_dir` to `out_dir`, checked on the evaluation split
    (read `chunk_rows` rows at a time).

    Writes export.json always and model.onnx only when the parity check passed."""
    import mlflow.sklearn

    out_dir.mkdir(parents=True, exist_ok=True)
    meta = json.loads((test_dir / "schema.json").read_text())
    features = tuple(meta["features"])
    file = split_file(test_dir)
    if file is None:
        raise StepError(
            f"no data.parquet or data.csv in {test_dir}; pass prepare's train/test folder"
        )
    x = _Chunks(file, list(features), chunk_rows)
    try:
        estimator = mlflow.sklearn.load_model(str(model_dir))
        onnx_bytes = to_onnx(estimator, len(features))
    except NotExportable as exc:
        result = ExportResult(False, str(exc), tolerance, rows=len(x), features=features)
    except Exception as exc:  # noqa: BLE001 - e.g. a model without the sklearn flavour
        result = ExportResult(
            False,
            f"cannot load the model as scikit-learn for export: {exc}",
            tolerance,
            rows=len(x),
            features=features,
        )
    else:
        result = check_parity(estimator, onnx_bytes, x, tolerance, features)
        if result.exportable:
            (out_dir / ONNX_FILE).write_bytes(onnx_bytes)
            result = ExportResult(**{**asdict(result), "onnx_file": ONNX_FILE})
    (out_dir / REPORT_FILE).write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    return result


class _Chunks:
    """The evaluation split as chunks of rows (read when iterated), with its row count."""

    def __init__(self, file: Path, columns: list[str], chunk_rows: int):
        self.file, self.columns, self.chunk_rows = file, columns, chunk_rows
        self.rows: int | None = None

    def __iter__(self) -> Any:
        self.rows = 0
        for chunk in iter_chunks(self.file, self.columns, self.chunk_rows):
            self.rows += len(chunk)
            yield chunk

    def __len__(self) -> int:
        if self.rows is None:
            self.rows = sum(len(chunk) for chunk in self)
        return self.rows


def fetch_onnx(tracking_uri: str, model_name: str, version: str, dest: Path) -> Path:
    """Copy the ONNX graph stored with `version` to `dest`; NotExportable says why not."""
    import shutil
    import tempfile

    import mlflow.artifacts
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        found = client.get_model_version(model_name, str(version))
    except MlflowException as exc:
        raise NotExportable(
            f"{model_name} version {version} is not in the registry at {tracking_uri}; "
            "list versions with `mlops catalog` or run the pipeline"
        ) from exc
    flag = found.tags.get("onnx_exportable")
    if flag is None:
        raise NotExportable(
            f"{model_name} version {version} was registered without an ONNX export (before "
            "edge export existed, or export.onnx was off); run the pipeline again to "
            "register a version with one"
        )
    if flag != "true":
        raise NotExportable(
            f"{model_name} version {version} is marked not exportable: "
            f"{found.tags.get('onnx_reason', 'no reason recorded')}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=found.run_id,
            artifact_path=f"{ARTIFACT_PATH}/{ONNX_FILE}",
            dst_path=tmp,
            tracking_uri=tracking_uri,
        )
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        shutil.copyfile(local, partial)
        partial.replace(dest)
    return dest
