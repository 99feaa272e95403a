"""train: fit the estimator on the train split and save it in MLflow format.

    python -m pipelines.steps.train --train DIR --model-dir DIR [--trainer module:callable] \
        [--hyperparameters JSON | --hyperparameters-file FILE] [--seed 42] \
        [--max-train-rows 1000000]

A train split of more than `--max-train-rows` rows is not read whole: the estimator is fitted
on a uniform sample of that many rows (without replacement, seeded by `--seed`), gathered
from the split's Parquet record batches one at a time, so memory is bounded by the setting.
training.json records it ("rows" fitted, "rows_available", "sample"). At or below the bound
the whole split is used, as before.

The model folder is an MLflow model (MLmodel at its root) that Azure ML, KServe's MLflow
runtime and SageMaker's MLflow serving container serve as is; training.json beside it records
the trainer, hyperparameters, code version and environment fingerprint. On SageMaker the
hyperparameters arrive in /opt/ml/input/config/hyperparameters.json as strings.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from pipelines.steps._common import (
    READ_BUFFER,
    StepError,
    code_version,
    environment_fingerprint,
    parse_scalar,
    read_json,
    read_split,
    split_file,
    split_rows,
    write_json,
)

SAGEMAKER_HYPERPARAMETERS = Path("/opt/ml/input/config/hyperparameters.json")
DEFAULT_MAX_TRAIN_ROWS = 1_000_000
"""Most rows the estimator is fitted on; the pipeline setting `max_train_rows`
(training.maxRows) overrides it."""
SAMPLE_BATCH_ROWS = 65_536
"""Rows of the train split read at a time while gathering a sample."""


def sample_positions(total: int, size: int, seed: int) -> Any:
    """`size` distinct row positions out of `total`, uniform and seeded, in ascending order."""
    import numpy as np

    return np.sort(np.random.default_rng(seed).choice(total, size=size, replace=False))


def read_sample(train_dir: Path, columns: list[str], size: int, seed: int) -> Any:
    """A uniform sample of `size` rows of the Parquet split in `train_dir`, in file order,
    read one record batch at a time (the sample and one batch are in memory, not the split)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = split_file(train_dir)
    parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=READ_BUFFER)
    positions = sample_positions(parquet.metadata.num_rows, size, seed)
    parts, start = [], 0
    for batch in parquet.iter_batches(batch_size=SAMPLE_BATCH_ROWS, columns=columns):
        end = start + batch.num_rows
        lo, hi = np.searchsorted(positions, [start, end])
        if hi > lo:
            parts.append(batch.take(pa.array(positions[lo:hi] - start)))
        start = end
    return pa.Table.from_batches(parts).to_pandas()


def load_trainer(ref: str) -> Any:
    module_name, _, attr = ref.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise StepError(
            f"trainer {ref!r} cannot be imported ({exc}); set trainer to "
            "'module:callable' of a function in the image"
        ) from exc


def resolve_hyperparameters(text: str | None, file: Path | None) -> tuple[dict[str, Any], dict]:
    """(hyperparameters, overrides): overrides are the trainer, seed and max_train_rows found
    in the file (SageMaker passes every step parameter in it)."""
    if file is None and not text and SAGEMAKER_HYPERPARAMETERS.is_file():
        file = SAGEMAKER_HYPERPARAMETERS
    raw: Any = {}
    overrides: dict[str, Any] = {}
    if file is not None:
        raw = read_json(file)
        if "hyperparameters" in raw:  # the SageMaker definition nests the JSON as one value
            overrides = {
                k: parse_scalar(raw[k]) for k in ("trainer", "seed", "max_train_rows") if k in raw
            }
            raw = parse_scalar(raw["hyperparameters"])
    elif text:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise StepError(f"--hyperparameters is not a JSON object: {text!r}") from exc
    if not isinstance(raw, dict):
        raise StepError(f"hyperparameters must be a JSON object, got {raw!r}")
    return {k: parse_scalar(v) for k, v in raw.items()}, overrides


def pinned_requirements() -> list[str]:
    """Pins of what the model needs to load; stating them skips MLflow's slow inference."""
    from importlib import metadata

    pins = []
    for name in ("mlflow", "scikit-learn", "cloudpickle", "numpy", "pandas", "scipy"):
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def train(
    train_dir: Path,
    model_dir: Path,
    *,
    trainer: str,
    hyperparameters: dict[str, Any],
    seed: int,
    max_rows: int = DEFAULT_MAX_TRAIN_ROWS,
) -> dict[str, Any]:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    if max_rows < 1:
        raise StepError(f"--max-train-rows {max_rows} is not at least 1; set training.maxRows")
    meta = read_json(train_dir / "schema.json")
    columns = [*meta["features"], meta["label"]]
    available = split_rows(train_dir)
    if available is not None and available > max_rows:
        frame = read_sample(train_dir, columns, max_rows, seed)
    else:
        frame = read_split(train_dir, columns)
        available = len(frame)
    x, y = frame[meta["features"]], frame[meta["label"]]
    estimator = load_trainer(trainer)(dict(hyperparameters), seed)
    estimator.fit(x, y)
    model_dir.mkdir(parents=True, exist_ok=True)
    if any(model_dir.iterdir()):
        raise StepError(f"model folder {model_dir} is not empty; pass a fresh --model-dir")
    mlflow.sklearn.save_model(
        estimator,
        str(model_dir),
        serialization_format="cloudpickle",
        signature=infer_signature(x.head(20), estimator.predict(x.head(20))),
        input_example=x.head(3),
        pip_requirements=pinned_requirements(),
    )
    info = {
        "trainer": trainer,
        "hyperparameters": hyperparameters,
        "seed": seed,
        "features": meta["features"],
        "label": meta["label"],
        "rows": len(frame),
        "rows_available": available,
        "sample": {
            "max_rows": max_rows,
            "sampled": len(frame) < available,
            "method": "uniform without replacement, seeded by the seed"
            if len(frame) < available
            else "all rows",
        },
        "data_hash": meta["data_hash"],
        "code_version": code_version(),
        "environment": environment_fingerprint(),
    }
    write_json(model_dir / "training.json", info)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.steps.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--train",
        type=Path,
        default=Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")),
    )
    parser.add_argument(
        "--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    )
    parser.add_argument("--trainer", default="pipelines.model:build_model")
    parser.add_argument("--hyperparameters", default=None, help="JSON object")
    parser.add_argument("--hyperparameters-file", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--max-train-rows",
        type=int,
        default=DEFAULT_MAX_TRAIN_ROWS,
        help="fit on a seeded uniform sample of this many rows when the split is larger",
    )
    args = parser.parse_args(argv)
    try:
        hyperparameters, overrides = resolve_hyperparameters(
            args.hyperparameters, args.hyperparameters_file
        )
        info = train(
            args.train,
            args.model_dir,
            hyperparameters=hyperparameters,
            trainer=str(overrides.get("trainer", args.trainer)),
            seed=int(overrides.get("seed", args.seed)),
            max_rows=int(overrides.get("max_train_rows", args.max_train_rows)),
        )
    except StepError as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    sample = (
        f" of {info['rows_available']} (a uniform sample; training.maxRows "
        f"{info['sample']['max_rows']})"
        if info["sample"]["sampled"]
        else ""
    )
    print(f"train: fitted {info['trainer']} on {info['rows']} rows{sample}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
