"""evaluate: accuracy, F1 and ROC AUC on the test split, to evaluation.json, with the ROC curve
and confusion matrix as PNG.

    python -m pipelines.steps.evaluate --model DIR --test DIR --evaluation-dir DIR \
        [--permutation-repeats 5] [--seed 42] [--chunk-rows 1000000]

evaluation.json carries the metrics twice: flat under "metrics" (read by the gate on every
target) and under "binary_classification_metrics" in the SageMaker model-quality format (shown
in the Model Registry). "feature_importance" holds the global explanation: permutation
importance of each feature (pipelines.explain), most important first, drawn in
feature_importance.png; the register step copies the top features to the registry.

A test split of more than `--chunk-rows` rows is scored chunk by chunk: only the labels,
predictions and scores (a few numbers per row) are kept for the metrics and plots, and the
permutation importance gets the rows it would get from the whole split (all of them up to
`pipelines.explain.MAX_ROWS`, above that the same seeded sample as pandas' `sample`),
gathered while reading; the metrics, plots and importance are those of a one-piece read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pipelines import explain
from pipelines.explain import permutation_report, plot_importance
from pipelines.steps._common import (
    DEFAULT_CHUNK_ROWS,
    StepError,
    iter_chunks,
    read_json,
    read_split,
    split_file,
    split_rows,
    write_json,
)


def scores(estimator: Any, x: Any) -> Any:
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(x)[:, 1]
    if hasattr(estimator, "decision_function"):
        return estimator.decision_function(x)
    return estimator.predict(x)


def plot(y: Any, score: Any, predicted: Any, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    RocCurveDisplay.from_predictions(y, score, ax=ax, name="model")
    ax.plot([0, 1], [0, 1], linestyle="--", linewidth=1)
    ax.set_title("ROC curve")
    fig.tight_layout()
    fig.savefig(out / "roc_curve.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ConfusionMatrixDisplay.from_predictions(y, predicted, ax=ax, colorbar=False)
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png")
    plt.close(fig)
    return ["roc_curve.png", "confusion_matrix.png"]


def score_in_chunks(
    estimator: Any, test_dir: Path, meta: dict[str, Any], chunk_rows: int, seed: int
) -> tuple[Any, Any, Any, Any, Any]:
    """(y, predicted, score, x_sample, y_sample) of the split in `test_dir`, read `chunk_rows`
    rows at a time. The sample is what `permutation_report` would use of the whole split: all
    rows up to `explain.MAX_ROWS`, else those `DataFrame.sample(n, random_state=seed)` picks,
    in its order."""
    import numpy as np
    import pandas as pd

    total, limit = split_rows(test_dir), explain.MAX_ROWS
    wanted = (
        np.arange(total)
        if total <= limit
        else np.random.RandomState(seed).choice(total, size=limit, replace=False)
    )
    order = np.argsort(wanted, kind="stable")
    ascending = wanted[order]
    ys, predictions, scored, picked = [], [], [], []
    columns = [*meta["features"], meta["label"]]
    for chunk in iter_chunks(split_file(test_dir), columns, chunk_rows):
        x = chunk[meta["features"]]
        ys.append(chunk[meta["label"]].to_numpy())
        predictions.append(np.asarray(estimator.predict(x)))
        scored.append(np.asarray(scores(estimator, x)))
        start = int(chunk.index[0]) if len(chunk) else 0
        lo, hi = np.searchsorted(ascending, [start, start + len(chunk)])
        picked.append(chunk.iloc[ascending[lo:hi] - start])
        del chunk, x  # before the next chunk is read
    sample = pd.concat(picked)
    sample = sample.iloc[np.argsort(order, kind="stable")]  # back to the sampler's order
    y = np.concatenate(ys)
    return (
        pd.Series(y, name=meta["label"]),
        np.concatenate(predictions),
        np.concatenate(scored),
        sample[meta["features"]],
        sample[meta["label"]],
    )


def evaluate(
    model_dir: Path,
    test_dir: Path,
    out: Path,
    *,
    permutation_repeats: int = 5,
    seed: int = 42,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> dict[str, Any]:
    import mlflow.sklearn
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

    if not (model_dir / "MLmodel").is_file():
        raise StepError(
            f"{model_dir} holds no MLflow model (MLmodel missing); pass train's "
            "model folder as --model"
        )
    meta = read_json(test_dir / "schema.json")
    estimator = mlflow.sklearn.load_model(str(model_dir))
    rows = split_rows(test_dir)
    if rows is None or rows <= chunk_rows:
        frame = read_split(test_dir, [*meta["features"], meta["label"]])
        x, y = frame[meta["features"]], frame[meta["label"]]
        predicted, score = estimator.predict(x), scores(estimator, x)
        x_sample, y_sample, rows = x, y, len(frame)
    else:
        y, predicted, score, x_sample, y_sample = score_in_chunks(
            estimator, test_dir, meta, chunk_rows, seed
        )
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, score)) if y.nunique() > 1 else float("nan"),
    }
    out.mkdir(parents=True, exist_ok=True)
    plots = plot(y, score, predicted, out)

    importance = permutation_report(
        estimator,
        x_sample,
        y_sample,
        repeats=permutation_repeats,
        seed=seed,
        max_rows=explain.MAX_ROWS,
    )
    plots.append(plot_importance(importance, out))
    evaluation = {
        "metrics": metrics,
        "rows": rows,
        "chunk_rows": chunk_rows,
        "confusion_matrix": confusion_matrix(y, predicted).tolist(),
        "plots": plots,
        "feature_importance": importance,
        "binary_classification_metrics": {
            name: {"value": value, "standard_deviation": "NaN"} for name, value in metrics.items()
        },
    }
    write_json(out / "evaluation.json", evaluation)
    return evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.steps.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--evaluation-dir", type=Path, required=True)
    parser.add_argument("--permutation-repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows scored at a time"
    )
    args = parser.parse_args(argv)
    model = args.model
    if (model / "model.tar.gz").is_file():  # SageMaker hands training output over as a tarball
        import tarfile

        target = args.evaluation_dir.parent / "model-unpacked"
        with tarfile.open(model / "model.tar.gz") as tar:
            tar.extractall(target, filter="data")
        model = target
    try:
        evaluation = evaluate(
            model,
            args.test,
            args.evaluation_dir,
            permutation_repeats=args.permutation_repeats,
            seed=args.seed,
            chunk_rows=args.chunk_rows,
        )
    except (StepError, ValueError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    text = ", ".join(f"{k} {v:.4f}" for k, v in evaluation["metrics"].items())
    print(f"evaluate: {text} on {evaluation['rows']} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
