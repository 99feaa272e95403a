"""evaluate: accuracy, F1 and ROC AUC on the test split, to evaluation.json, with the ROC curve
and confusion matrix as PNG.

    python -m pipelines.steps.evaluate --model DIR --test DIR --evaluation-dir DIR \
        [--permutation-repeats 5] [--seed 42]

evaluation.json carries the metrics twice: flat under "metrics" (read by the gate on every
target) and under "binary_classification_metrics" in the SageMaker model-quality format (shown
in the Model Registry). "feature_importance" holds the global explanation: permutation
importance of each feature (pipelines.explain), most important first, drawn in
feature_importance.png; the register step copies the top features to the registry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pipelines.explain import permutation_report, plot_importance
from pipelines.steps._common import StepError, read_json, read_split, write_json


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


def evaluate(
    model_dir: Path, test_dir: Path, out: Path, *, permutation_repeats: int = 5, seed: int = 42
) -> dict[str, Any]:
    import mlflow.sklearn
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

    if not (model_dir / "MLmodel").is_file():
        raise StepError(
            f"{model_dir} holds no MLflow model (MLmodel missing); pass train's "
            "model folder as --model"
        )
    meta = read_json(test_dir / "schema.json")
    frame = read_split(test_dir, [*meta["features"], meta["label"]])
    x, y = frame[meta["features"]], frame[meta["label"]]
    estimator = mlflow.sklearn.load_model(str(model_dir))
    predicted, score = estimator.predict(x), scores(estimator, x)
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, score)) if y.nunique() > 1 else float("nan"),
    }
    out.mkdir(parents=True, exist_ok=True)
    plots = plot(y, score, predicted, out)

    importance = permutation_report(estimator, x, y, repeats=permutation_repeats, seed=seed)
    plots.append(plot_importance(importance, out))
    evaluation = {
        "metrics": metrics,
        "rows": len(frame),
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
        )
    except (StepError, ValueError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    text = ", ".join(f"{k} {v:.4f}" for k, v in evaluation["metrics"].items())
    print(f"evaluate: {text} on {evaluation['rows']} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
