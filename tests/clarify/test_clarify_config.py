"""The clarify-config step: run by its `main` on the example data, it writes an analysis config
that SageMaker Clarify's own schema and config generator agree with, and a dataset whose
requests the kit's model server answers in the shape the config reads back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.data import breast_cancer
from pipelines.steps import clarify_config as cc
from pipelines.steps._common import feature_columns, load_contract
from pipelines.steps.prepare import prepare

MODEL_NAME = "pipelines-1a2b3c-ClarifyModel-x9y8z7"


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prepare step's train/test split of the example data."""
    root = tmp_path_factory.mktemp("clarify-splits")
    data = root / "batch.csv"
    breast_cancer().to_csv(data, index=False)
    prepare(
        data,
        None,
        contract=load_contract(""),
        test_size=0.25,
        seed=42,
        train_dir=root / "train",
        test_dir=root / "test",
        baseline_dir=root / "baseline",
    )
    return root


def _run(splits: Path, out: Path, *extra: str) -> int:
    return cc.main(
        [
            "--train",
            str(splits / "train"),
            "--test",
            str(splits / "test"),
            "--model-name",
            MODEL_NAME,
            "--config-dir",
            str(out / "config"),
            "--dataset-dir",
            str(out / "dataset"),
            "--endpoint-name-prefix",
            "acme-prod-clarify",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def written(splits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clarify-out")
    assert _run(splits, out) == 0
    return out


def _config(out: Path) -> dict[str, Any]:
    return json.loads((out / "config" / cc.CONFIG_FILE).read_text())


def test_config_is_a_valid_shap_analysis_config(written: Path, splits: Path) -> None:
    from sagemaker.core.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0

    config = _config(written)
    ANALYSIS_CONFIG_SCHEMA_V1_0.validate(config)  # raises SchemaError on any bad key or value
    contract = load_contract("")
    features = feature_columns(contract)
    assert config["headers"] == [*features, "target"]
    assert config["label"] == "target"
    assert config["dataset_type"] == "text/csv"
    shap = config["methods"]["shap"]
    (baseline,) = shap["baseline"]
    train = pd.read_parquet(splits / "train" / "data.parquet")
    assert np.allclose(baseline, train[features].mean().to_numpy())
    assert shap["num_samples"] == cc.NUM_SAMPLES and shap["seed"] == 42
    predictor = config["predictor"]
    assert predictor["model_name"] == MODEL_NAME
    assert predictor["endpoint_name_prefix"] == "acme-prod-clarify"
    assert predictor["instance_type"] == "ml.m5.large"


def test_config_is_what_the_sdk_generator_writes(written: Path) -> None:
    """The SDK's own generator, given the same choices, writes the same config (its report
    title is fixed; ours names the contract), so nothing is hand-written wrongly."""
    from sagemaker.core import clarify

    config = _config(written)
    sdk = clarify._AnalysisConfigGenerator.explainability(
        clarify.DataConfig(
            s3_data_input_path="s3://bucket/dataset",
            s3_output_path="s3://bucket/analysis",
            label="target",
            headers=config["headers"],
            dataset_type="text/csv",
        ),
        clarify.ModelConfig(
            model_name=MODEL_NAME,
            instance_type="ml.m5.large",
            instance_count=1,
            content_type="application/json",
            accept_type="application/json",
            content_template=cc.CONTENT_TEMPLATE,
            record_template=cc.RECORD_TEMPLATE,
            endpoint_name_prefix="acme-prod-clarify",
        ),
        clarify.ModelPredictedLabelConfig(label=cc.PREDICTED_LABEL),
        clarify.SHAPConfig(
            baseline=config["methods"]["shap"]["baseline"],
            num_samples=cc.NUM_SAMPLES,
            agg_method="mean_abs",
            use_logit=False,
            save_local_shap_values=True,
            seed=42,
        ),
    )
    assert config["methods"]["report"]["title"] == "breast-cancer: explainability (SHAP)"
    sdk["methods"]["report"]["title"] = config["methods"]["report"]["title"]
    assert {**sdk, "version": "1.0"} == config


def test_dataset_is_the_test_split_headerless_in_header_order(written: Path, splits: Path) -> None:
    config = _config(written)
    lines = (written / "dataset" / cc.DATASET_FILE).read_text().splitlines()
    test = pd.read_parquet(splits / "test" / "data.parquet")
    assert len(lines) == len(test)  # 143 rows, under the cap: no header row, none dropped
    first = [float(v) for v in lines[0].split(",")]  # a header row would not parse
    assert len(first) == len(config["headers"])
    dataset = pd.read_csv(written / "dataset" / cc.DATASET_FILE, header=None)
    dataset.columns = config["headers"]
    pd.testing.assert_frame_equal(dataset, test[config["headers"]], check_dtype=False)


def test_max_rows_takes_a_seeded_sample(splits: Path, tmp_path: Path) -> None:
    assert _run(splits, tmp_path / "a", "--max-rows", "20", "--seed", "7") == 0
    assert _run(splits, tmp_path / "b", "--max-rows", "20", "--seed", "7") == 0
    assert _run(splits, tmp_path / "c", "--max-rows", "20", "--seed", "8") == 0
    a, b, c = ((tmp_path / x / "dataset" / cc.DATASET_FILE).read_text() for x in "abc")
    assert len(a.splitlines()) == 20
    assert a == b and a != c
    assert _config(tmp_path / "a")["methods"]["shap"]["seed"] == 7


@pytest.mark.parametrize(
    ("extra", "corrupt", "message"),
    [
        (("--model-name", " "), None, "--model-name is empty"),
        (("--max-rows", "0"), None, "--max-rows=0 is not at least 1"),
        (("--num-samples", "0"), None, "--num-samples=0 is not at least 1"),
        (("--instance-type", "m5.large"), None, "--instance-type='m5.large' is not a SageMaker"),
        (("--endpoint-name-prefix=-bad",), None, "--endpoint-name-prefix='-bad' is not"),
        (("--endpoint-name-prefix", "a" * 24), None, "is not 1-23 letters"),
        ((), "drop", "lacks the contract's column(s) mean_radius"),
        ((), "text", "column(s) mean_radius of"),
        ((), "null", "column(s) mean_radius of"),
        ((), "missing", "data.csv is missing; point --test"),
    ],
)
def test_bad_input_is_refused_naming_the_fix(
    splits: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    corrupt: str | None,
    message: str,
) -> None:
    root = splits
    if corrupt:
        root = tmp_path / "splits"
        (root / "test").mkdir(parents=True)
        (root / "train").symlink_to(splits / "train")
        test = pd.read_parquet(splits / "test" / "data.parquet")
        if corrupt == "drop":
            test = test.drop(columns=["mean_radius"])
        elif corrupt == "text":
            test["mean_radius"] = "wide"
        elif corrupt == "null":
            test.loc[3, "mean_radius"] = None
        if corrupt != "missing":
            test.to_csv(root / "test" / "data.csv", index=False)
    out = tmp_path / "out"
    assert _run(root, out, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("clarify-config: ") and message in err
    if corrupt == "null":
        assert "empty values" in err
    assert not (out / "config").exists() and not (out / "dataset").exists()  # nothing half-done


@pytest.mark.parametrize(
    ("pipeline", "prefix"),
    [
        ("acme-prod-training", "acme-prod-clarify"),
        ("acme-dev-train", "acme-dev-clarify"),
        ("averyveryverylongclient-staging-training", "averyveryverylo-clarify"),
        ("x_y.z", "x-y-z-clarify"),
        ("---", "sm-clarify"),
    ],
)
def test_endpoint_prefix_is_short_valid_and_accepted_by_clarify(pipeline: str, prefix: str) -> None:
    from sagemaker.core import clarify

    got = cc.clarify_endpoint_prefix(pipeline)
    assert got == prefix
    assert len(got) <= cc.PREFIX_MAX and cc.PREFIX_PATTERN.match(got)
    clarify.ModelConfig(  # raises ValueError on a prefix Clarify refuses
        model_name="m", instance_type="ml.m5.large", instance_count=1, endpoint_name_prefix=got
    )


async def _post(app: Any, body: bytes, content_type: str) -> tuple[int, bytes]:
    """One HTTP request through an ASGI app, no socket (httpx is not a dependency)."""
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/invocations",
        "raw_path": b"/invocations",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_requests_from_the_config_are_answered_by_the_kit_model_server(
    written: Path, splits: Path, tmp_path: Path
) -> None:
    """Clarify fills content_template/record_template with rows of the dataset (label dropped)
    and reads predictions back with the `label` JMESPath: the kit's serving image (MLflow
    scoring server) must accept exactly that request and answer one label per row."""
    import jmespath

    from pipelines.serving.model_server import build_app
    from pipelines.steps.train import train

    train(
        splits / "train",
        tmp_path / "model",
        trainer="pipelines.model:build_model",
        hyperparameters={},
        seed=42,
    )
    config = _config(written)
    predictor = config["predictor"]
    features = [h for h in config["headers"] if h != config["label"]]
    rows = pd.read_csv(written / "dataset" / cc.DATASET_FILE, header=None)
    rows.columns = config["headers"]
    rows = rows.head(7)
    records = [  # Clarify's placeholders: $features_kvp {name: value}, $features [values]
        predictor["record_template"]
        .replace("$features_kvp", json.dumps({f: float(r[f]) for f in features}))
        .replace("$features", json.dumps([float(r[f]) for f in features]))
        for _, r in rows.iterrows()
    ]
    body = predictor["content_template"].replace("$records", "[" + ",".join(records) + "]")
    # a private loop: asyncio.run would leave the thread without one, which Pulumi needs later
    loop = asyncio.new_event_loop()
    try:
        status, answer = loop.run_until_complete(
            _post(build_app(str(tmp_path / "model")), body.encode(), predictor["content_type"])
        )
    finally:
        loop.close()
    assert status == 200, answer
    labels = jmespath.search(predictor["label"], json.loads(answer))
    assert len(labels) == 7 and set(labels) <= {0, 1}
    right = sum(a == b for a, b in zip(labels, rows["target"], strict=True))
    assert right >= 6  # the trained model's own predictions: right on nearly every held-out row
