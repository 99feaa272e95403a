"""export-onnx: edge export of the trained model before SageMaker registers it (SageMaker only;
plain Python, no platform SDK).

    python -m pipelines.steps.export_onnx --model PATH --test PATH --tolerance T \
        --export-dir PATH [--export-uri S3_URI]

On SageMaker the model is registered by SageMaker's own RegisterModel step, not by
`pipelines.steps.register`, so the ONNX export that step does elsewhere runs here instead:
after the quality gate's condition, before RegisterModel. It is built on
`pipelines.steps.onnx_parity`: the model (an MLflow folder, or the training job's
`model.tar.gz`) is converted with skl2onnx and its class probabilities are compared with the
original's on every row of the test split.

Writes
- `<export-dir>/export.json`: the export result (`pipelines.steps.onnx_parity.ExportResult`) plus
  `metadata`, the string values the model package carries as CustomerMetadataProperties:
  `onnx_exportable` ("true"/"false"), `onnx_reason`, `onnx_max_abs_diff`, `onnx_tolerance`
  and `onnx_uri` (`<export-uri>/onnx/model.onnx` when exportable), each fitted to the API's
  rules for those values (1-256 characters of letters, digits, spaces and `_.:/=+-@`; see
  `metadata_value`), "none" when unknown;
- `<export-dir>/onnx/model.onnx`: the graph, only when the parity check passed.

A model that cannot be exported is not an error (exit 0): the version is still registered,
marked not exportable with the reason, as on the other platforms. Exit 2 means the inputs are
unusable (no model, no test split), with a message saying which.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from pipelines.definition import Input, Step
from pipelines.steps._common import StepError, split_file, write_json
from pipelines.steps.onnx_parity import ONNX_FILE, export_model

STEP = Step(
    "export-onnx",
    "pipelines.steps.export_onnx",
    "processing",
    "Export the model to ONNX and check its parity on the test split (export.onnx).",
    inputs=(Input("model", "train.model"), Input("test", "prepare.test")),
    outputs=("export",),
)
"""The step as the SageMaker compiler declares it; `--tolerance` and `--export-uri` are added
by the compiler (the tolerance is the OnnxTolerance pipeline parameter)."""

REPORT_FILE = "export.json"
ONNX_DIR = "onnx"
METADATA_MAX = 256
"""Longest value the SageMaker API accepts in CustomerMetadataProperties."""
METADATA_EXTRA = set("_.:/=+-@")
"""Besides letters, digits and spaces, the only characters the API accepts in those values."""
NONE = "none"
"""A metadata value that is not known (the API rejects empty values)."""
METADATA_KEYS = (
    "onnx_exportable",
    "onnx_reason",
    "onnx_max_abs_diff",
    "onnx_tolerance",
    "onnx_uri",
)


def metadata_value(text: str) -> str:
    """`text` as a CustomerMetadataProperties value: characters the API rejects (`|`, `>`,
    `;`, `(`...) become spaces, whitespace collapses, at most 256 characters, never empty."""
    kept = "".join(
        ch
        if ch.isalpha()
        or ch.isnumeric()
        or ch in METADATA_EXTRA
        or unicodedata.category(ch).startswith("Z")
        else " "
        for ch in text
    )
    return " ".join(kept.split())[:METADATA_MAX].strip() or NONE


def _model_dir(model: Path, scratch: Path) -> Path:
    """The MLflow model folder: `model` itself, or SageMaker's model.tar.gz unpacked."""
    if not model.exists():
        raise StepError(f"model path {model} does not exist; pass the trained model as --model")
    tarball = model if model.is_file() else model / "model.tar.gz"
    if tarball.is_file() and tarball.name.endswith(".tar.gz"):
        target = scratch / "model"
        with tarfile.open(tarball) as tar:
            tar.extractall(target, filter="data")
        return target
    if not (model / "MLmodel").is_file():
        raise StepError(
            f"{model} holds neither an MLflow model (MLmodel) nor model.tar.gz; pass the "
            "training step's model output as --model"
        )
    return model


def export(
    model: Path, test: Path, export_dir: Path, *, tolerance: float, export_uri: str = ""
) -> dict[str, Any]:
    """Export `model`, check parity on `test`, write export.json (and onnx/model.onnx)."""
    if not 0.0 < tolerance <= 0.5:
        raise StepError(f"--tolerance {tolerance:g} is not within (0, 0.5]; set export.tolerance")
    if split_file(test) is None:
        raise StepError(
            f"no data.parquet and no data.csv in {test}; pass prepare's test folder as --test"
        )
    if not (test / "schema.json").is_file():
        raise StepError(f"no schema.json in {test}; pass prepare's test folder as --test")
    export_dir.mkdir(parents=True, exist_ok=True)
    onnx_dir = export_dir / ONNX_DIR
    with tempfile.TemporaryDirectory(prefix="export-onnx-") as tmp:
        result = export_model(_model_dir(model, Path(tmp)), test, onnx_dir, tolerance=tolerance)
    (onnx_dir / REPORT_FILE).unlink(missing_ok=True)  # export.json lives one level up
    if not result.exportable and onnx_dir.is_dir() and not any(onnx_dir.iterdir()):
        onnx_dir.rmdir()
    tags = result.tags()
    onnx_uri = NONE
    if result.exportable and export_uri:
        onnx_uri = f"{export_uri.rstrip('/')}/{ONNX_DIR}/{ONNX_FILE}"
    metadata = {
        **{key: metadata_value(tags[key]) for key in METADATA_KEYS if key in tags},
        "onnx_uri": onnx_uri,
    }
    report = {**result.to_dict(), "metadata": metadata}
    if result.exportable:
        report["onnx_file"] = f"{ONNX_DIR}/{ONNX_FILE}"
    write_json(export_dir / REPORT_FILE, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.steps.export_onnx",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--tolerance", type=float, required=True)
    parser.add_argument("--export-dir", type=Path, required=True)
    parser.add_argument(
        "--export-uri", default="", help="Where --export-dir is uploaded (for onnx_uri)."
    )
    args = parser.parse_args(argv)
    try:
        report = export(
            args.model,
            args.test,
            args.export_dir,
            tolerance=args.tolerance,
            export_uri=args.export_uri,
        )
    except StepError as exc:
        print(f"export-onnx: {exc}", file=sys.stderr)
        return 2
    state = "exportable" if report["exportable"] else "not exportable"
    print(f"export-onnx: {state}: {report['reason']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
