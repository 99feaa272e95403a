"""Global explanations: permutation importance of each feature on the evaluation set.

    report = permutation_report(estimator, x, y, repeats=5, seed=42)

Permutation importance is model-agnostic (any estimator with `predict`, scored through
scikit-learn), needs no extra library and answers the question a reviewer asks of a registered
version: how much does the score drop when one feature's values are shuffled? The evaluation
step puts the report in evaluation.json under "feature_importance" and draws
feature_importance.png; the register step copies the ranking into the registry metadata.

SHAP would add per-prediction explanations; it is not a kit dependency (compiled, heavy, and
the linear example model's coefficients already explain single predictions), so the kit keeps
to the global view. Large evaluation sets are subsampled to `max_rows` (seeded) to bound the
cost at `repeats x features` predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_ROWS = 10_000
"""Rows of the evaluation set used for permutation importance (seeded sample above this)."""


def scoring_for(estimator: Any, y: Any) -> str:
    """roc_auc for a binary classifier with scores, accuracy otherwise."""
    binary = len(set(y.tolist() if hasattr(y, "tolist") else y)) == 2
    has_scores = hasattr(estimator, "predict_proba") or hasattr(estimator, "decision_function")
    return "roc_auc" if binary and has_scores else "accuracy"


def permutation_report(
    estimator: Any,
    x: Any,
    y: Any,
    *,
    repeats: int,
    seed: int,
    scoring: str | None = None,
    max_rows: int = MAX_ROWS,
) -> dict[str, Any]:
    """Mean and standard deviation of the score drop per feature, most important first."""
    from sklearn.inspection import permutation_importance

    if repeats < 1:
        raise ValueError(
            f"explain.permutation_repeats={repeats} is not at least 1; "
            "set explain.permutationRepeats in Pulumi.<stack>.yaml"
        )
    rows = len(x)
    if rows > max_rows:
        sample = x.sample(n=max_rows, random_state=seed)
        x, y = sample, y.loc[sample.index]
    scoring = scoring or scoring_for(estimator, y)
    result = permutation_importance(
        estimator, x, y, scoring=scoring, n_repeats=repeats, random_state=seed, n_jobs=1
    )
    features = [
        {
            "feature": str(name),
            "importance_mean": round(float(mean), 6),
            "importance_std": round(float(std), 6),
        }
        for name, mean, std in zip(
            x.columns, result.importances_mean, result.importances_std, strict=True
        )
    ]
    features.sort(key=lambda f: (-f["importance_mean"], f["feature"]))
    return {
        "method": "permutation",
        "scoring": scoring,
        "repeats": repeats,
        "seed": seed,
        "rows": min(rows, max_rows),
        "features": features,
    }


def plot_importance(report: dict[str, Any], out: Path, top: int = 15) -> str:
    """A horizontal bar chart of the `top` features to `out/feature_importance.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = report["features"][:top][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(shown) + 1.2), dpi=100)
    ax.barh(
        [f["feature"] for f in shown],
        [f["importance_mean"] for f in shown],
        xerr=[f["importance_std"] for f in shown],
    )
    ax.set_xlabel(f"drop in {report['scoring']} when shuffled ({report['repeats']} repeats)")
    ax.set_title("Permutation importance")
    fig.tight_layout()
    fig.savefig(out / "feature_importance.png")
    plt.close(fig)
    return "feature_importance.png"
