"""Explanations: permutation importance in evaluation.json, its plot, the registry metadata,
and the config keys that drive it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipelines.explain import permutation_report
from pipelines.local import RunResult
from tests.serving.conftest import MODEL


def test_evaluation_json_ranks_every_feature_and_draws_the_plot(run: RunResult) -> None:
    folder = run.artifact("evaluate", "evaluation")
    evaluation = json.loads((folder / "evaluation.json").read_text())
    importance = evaluation["feature_importance"]
    assert importance["method"] == "permutation" and importance["scoring"] == "roc_auc"
    assert importance["repeats"] == 5
    means = [f["importance_mean"] for f in importance["features"]]
    assert len(means) == 30 and means == sorted(means, reverse=True)
    assert "feature_importance.png" in evaluation["plots"]
    assert (folder / "feature_importance.png").read_bytes()[:4] == b"\x89PNG"


def test_registry_metadata_carries_the_top_features(run: RunResult) -> None:
    client = MlflowClient(tracking_uri=run.tracking_uri, registry_uri=run.tracking_uri)
    top = json.loads(client.get_model_version(MODEL, "1").tags["feature_importance"])
    evaluation = json.loads(
        (run.artifact("evaluate", "evaluation") / "evaluation.json").read_text()
    )
    assert list(top) == [f["feature"] for f in evaluation["feature_importance"]["features"][:10]]


def test_the_informative_feature_ranks_first() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(400, 4)), columns=["noise_a", "signal", "noise_b", "n_c"])
    y = pd.Series((x["signal"] > 0).astype(int))
    model = LogisticRegression().fit(x, y)
    report = permutation_report(model, x, y, repeats=3, seed=1)
    assert report["features"][0]["feature"] == "signal"
    assert report["features"][0]["importance_mean"] > 0.3
    assert all(abs(f["importance_mean"]) < 0.05 for f in report["features"][1:])


def test_large_sets_are_subsampled_and_bad_repeats_are_named() -> None:
    from sklearn.dummy import DummyClassifier

    x = pd.DataFrame({"a": np.arange(50.0)})
    y = pd.Series([0, 1] * 25)
    model = DummyClassifier(strategy="prior").fit(x, y)
    assert permutation_report(model, x, y, repeats=1, seed=0, max_rows=20)["rows"] == 20
    with pytest.raises(ValueError, match=r"permutation_repeats=0.*explain.permutationRepeats"):
        permutation_report(model, x, y, repeats=0, seed=0)


def test_stack_keys_reach_the_pipeline_settings_and_parameters() -> None:
    from core.config import validate_settings
    from pipelines.definition import parameter_defaults, pipeline_settings_from_stack

    stack = validate_settings(
        {
            "mlops:blueprint": "onprem",
            "mlops:client": "zed",
            "mlops:environment": "dev",
            "mlops:kubernetes": {"clusterStack": "zed-cluster"},
            "mlops:explain": {"permutationRepeats": 9, "clarify": True},
            "mlops:export": {"onnx": False, "tolerance": 0.002},
        },
        stack="zed-dev",
    )
    settings = pipeline_settings_from_stack(stack)
    assert (settings.permutation_repeats, settings.clarify) == (9, True)
    assert (settings.export_onnx, settings.onnx_tolerance) == (False, 0.002)
    params = parameter_defaults(settings)
    assert (params["permutation_repeats"], params["export_onnx"]) == (9, 0)
    assert params["onnx_tolerance"] == 0.002
