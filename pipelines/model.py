"""The example model: a scaled logistic regression. Replace it by pointing
`PipelineSettings.trainer` at your own 'module:callable' with the same signature."""

from __future__ import annotations

from typing import Any


def build_model(hyperparameters: dict[str, Any], seed: int) -> Any:
    """An unfitted scikit-learn classifier with `fit`, `predict` and `predict_proba`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    params = {"C": 1.0, "max_iter": 1000, **hyperparameters}
    return make_pipeline(StandardScaler(), LogisticRegression(random_state=seed, **params))
