"""The floor for the local pipeline: the same work with the same library calls, in one bare
script, no runner, no steps, no intermediate files.

    python -m benchmarks.pipeline_floor --data batch.parquet --workdir DIR [--model-name NAME]

What it does, in order, is what `mlops pipeline run --target local` does with the example
settings (acme-dev, no champion yet): read the batch (pyarrow), validate it against the
packaged contract with pandera (types, ranges, nulls, label domain, lazy), split it (stratified
`train_test_split`, 25 %, seed 42), take the baseline statistics of the train split (deciles,
proportions, 101 quantiles, mean, std per feature), fit StandardScaler + LogisticRegression,
score accuracy, F1 and ROC AUC on the test split, draw the ROC curve, confusion matrix and
permutation importance (5 repeats on at most 10,000 rows), save the model in MLflow format
(pinned requirements, signature, input example), convert it to ONNX and check parity on every
test row with onnxruntime, and register it in a sqlite MLflow registry (run with params,
metrics, model, evaluation and baseline artifacts; version with tags; champion alias).

`benchmarks/pipeline_overhead.py` runs it as a fresh process beside the kit and ZenML. It is
written against the libraries only (it imports nothing from the kit), so what the kit adds is
the difference.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

TIMINGS: dict[str, float] = {}


def _lap(name: str, started: float) -> float:
    now = time.perf_counter()
    TIMINGS[name] = round(now - started, 3)
    return now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--model-name", default="floor-classifier")
    args = parser.parse_args(argv)
    t = time.perf_counter()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow.sklearn
    import numpy as np
    import onnxruntime as ort
    import pandas as pd
    import pandera.pandas as pa
    import yaml
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import (
        ConfusionMatrixDisplay,
        RocCurveDisplay,
        accuracy_score,
        confusion_matrix,
        f1_score,
        roc_auc_score,
    )
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t = _lap("imports", t)
    root = Path(__file__).resolve().parent.parent
    contract = yaml.safe_load((root / "pipelines/contracts/breast_cancer.yaml").read_text())
    label = contract["label"]["column"]
    features = [c for c in contract["columns"] if c != label]
    frame = pd.read_parquet(args.data)
    t = _lap("read", t)

    columns = {}
    for name, rule in contract["columns"].items():
        checks = []
        if "min" in rule and "max" in rule:
            checks.append(pa.Check.in_range(rule["min"], rule["max"]))
        if name == label:
            checks.append(pa.Check.isin(list(contract["label"]["domain"])))
        columns[name] = pa.Column(
            rule.get("dtype", "float64"),
            checks=checks,
            nullable=bool(rule.get("nullable", False)),
            coerce=True,
        )
    pa.DataFrameSchema(columns, strict=False).validate(frame, lazy=True)
    t = _lap("validate", t)

    frame = frame[[*features, label]]
    train, test = train_test_split(frame, test_size=0.25, random_state=42, stratify=frame[label])
    del frame
    edge_levels, sample_levels = np.linspace(0, 1, 11)[1:-1], np.linspace(0, 1, 101)
    baseline = {}
    for name in features:
        values = train[name].to_numpy(dtype=float)
        both = np.quantile(values, np.concatenate([edge_levels, sample_levels]))
        edges = np.unique(both[:9])
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        baseline[name] = {
            "edges": edges.tolist(),
            "proportions": (counts / len(values)).tolist(),
            "quantiles": both[9:].tolist(),
            "mean": float(values.mean()),
            "std": float(values.std()),
        }
    out = args.workdir
    (out / "baseline").mkdir(parents=True, exist_ok=True)
    (out / "baseline" / "baseline.json").write_text(json.dumps({"features": baseline}))
    t = _lap("prepare", t)

    x, y = train[features], train[label]
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=42)
    )
    model.fit(x, y)
    model_dir = out / "model"
    pins = []
    from importlib import metadata

    for package in ("mlflow", "scikit-learn", "cloudpickle", "numpy", "pandas", "scipy"):
        pins.append(f"{package}=={metadata.version(package)}")
    mlflow.sklearn.save_model(
        model,
        str(model_dir),
        serialization_format="cloudpickle",
        signature=infer_signature(x.head(20), model.predict(x.head(20))),
        input_example=x.head(3),
        pip_requirements=pins,
    )
    t = _lap("train", t)

    xt, yt = test[features], test[label]
    predicted, score = model.predict(xt), model.predict_proba(xt)[:, 1]
    metrics = {
        "accuracy": float(accuracy_score(yt, predicted)),
        "f1": float(f1_score(yt, predicted)),
        "roc_auc": float(roc_auc_score(yt, score)),
    }
    evaluation = out / "evaluation"
    evaluation.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    RocCurveDisplay.from_predictions(yt, score, ax=ax, name="model")
    fig.savefig(evaluation / "roc_curve.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    ConfusionMatrixDisplay.from_predictions(yt, predicted, ax=ax, colorbar=False)
    fig.savefig(evaluation / "confusion_matrix.png")
    plt.close(fig)
    sample = xt.sample(n=min(len(xt), 10_000), random_state=42)
    importance = permutation_importance(
        model, sample, yt.loc[sample.index], scoring="roc_auc", n_repeats=5, random_state=42
    )
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    ax.barh(features[:15], importance.importances_mean[:15])
    fig.savefig(evaluation / "feature_importance.png")
    plt.close(fig)
    (evaluation / "evaluation.json").write_text(
        json.dumps(
            {"metrics": metrics, "confusion_matrix": confusion_matrix(yt, predicted).tolist()}
        )
    )
    t = _lap("evaluate", t)

    graph = convert_sklearn(
        model,
        initial_types=[("input", FloatTensorType([None, len(features)]))],
        target_opset={"": 17, "ai.onnx.ml": 3},
        options={id(model): {"zipmap": False}},
    ).SerializeToString()
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    onnx_p = session.run(None, {"input": xt.to_numpy(np.float32)})[1]
    diff = float(np.max(np.abs(onnx_p - model.predict_proba(xt))))
    onnx_dir = out / "onnx"
    onnx_dir.mkdir(exist_ok=True)
    if diff <= 1e-4:
        (onnx_dir / "model.onnx").write_bytes(graph)
    t = _lap("onnx", t)

    uri = f"sqlite:///{(out / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(args.model_name)
    experiment = client.create_experiment(
        args.model_name, artifact_location=(out / "artifacts").resolve().as_uri()
    )
    run = client.create_run(experiment)
    run_id = run.info.run_id
    for key, value in {"C": 1.0, "max_iter": 1000, "seed": 42}.items():
        client.log_param(run_id, key, value)
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
    client.log_artifacts(run_id, str(model_dir), "model")
    client.log_artifacts(run_id, str(evaluation), "evaluation")
    client.log_artifact(run_id, str(out / "baseline" / "baseline.json"), "baseline")
    client.log_artifacts(run_id, str(onnx_dir), "onnx")
    client.set_terminated(run_id)
    version = client.create_model_version(
        args.model_name,
        f"{run.info.artifact_uri}/model",
        run_id=run_id,
        tags={"onnx_max_abs_diff": f"{diff:.3e}", **{k: f"{v:.6f}" for k, v in metrics.items()}},
    )
    client.set_registered_model_alias(args.model_name, "champion", version.version)
    _lap("register", t)
    print(json.dumps({"metrics": metrics, "onnx_max_abs_diff": diff, "seconds": TIMINGS}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
