"""clarify-config: the SageMaker Clarify SHAP analysis config for the trained model, and the
dataset Clarify explains (SageMaker only; plain Python, no platform SDK).

    python -m pipelines.steps.clarify_config --train DIR --test DIR --model-name NAME \
        --config-dir DIR --dataset-dir DIR [--contract FILE] [--seed 42] [--max-rows 1000] \
        [--num-samples 100] [--instance-type ml.m5.large] [--endpoint-name-prefix PREFIX]

Why a step and not the SDK's ClarifyCheckStep: that step uploads its analysis config to S3 when
the pipeline definition is built (timestamped names, AWS credentials), and the kit compiles the
definition offline at plan time. Here the config is written at run time, inside the pipeline,
by this step in the kit image; the next step runs the SageMaker Clarify container on it.

Writes
- `<config-dir>/analysis_config.json`: Clarify's analysis config (schema version 1.0) for a
  SHAP explainability run: `headers` are the data contract's features then its label; the
  SHAP `baseline` is one row, the mean of each feature over the prepared train split; the
  `predictor` is the SageMaker Model `--model-name` (created by the pipeline from the training
  job's artifacts), on a shadow endpoint Clarify creates and deletes, sent JSON records the
  way the kit's MLflow scoring server reads them (`{"dataframe_records": [{feature: value}]}`)
  and read back from its `{"predictions": [...]}` answer; a PDF/HTML `report` is asked for;
- `<dataset-dir>/data.csv`: the prepared test split, the contract's columns in the order of
  `headers`, no header row (Clarify's CSV convention when `headers` is given), at most
  `--max-rows` rows (a seeded sample: Kernel SHAP costs rows x num_samples predictions).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from pipelines.definition import Input, Step
from pipelines.steps._common import (
    SPLIT_FILES,
    StepError,
    feature_columns,
    load_contract,
    split_file,
    write_json,
)

STEP = Step(
    "clarify-config",
    "pipelines.steps.clarify_config",
    "processing",
    "Write the SageMaker Clarify SHAP analysis config and the dataset it explains.",
    inputs=(Input("train", "prepare.train"), Input("test", "prepare.test")),
    outputs=("config", "dataset"),
    params=("contract", "seed"),
)
"""The step as the SageMaker compiler declares it (its argv comes from this, as for PIPELINE)."""

CONFIG_FILE = "analysis_config.json"
DATASET_FILE = "data.csv"
REPORT_NAME = "report"
ANALYSIS_FILE = "analysis.json"
"""What the Clarify job writes at the root of its output: the explainability report (JSON)."""
ENDPOINT_INSTANCE_TYPE = "ml.m5.large"
MAX_ROWS = 1000
NUM_SAMPLES = 100
CONTENT_TEMPLATE = '{"dataframe_records":$records}'
RECORD_TEMPLATE = "$features_kvp"
PREDICTED_LABEL = "predictions"
"""JMESPath of the predicted labels in the MLflow scoring server's answer."""
PREFIX_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
PREFIX_MAX = 23


def clarify_endpoint_prefix(pipeline_name: str) -> str:
    """Name prefix of Clarify's shadow endpoints for a pipeline: at most 23 characters, so an
    IAM policy can scope the endpoint grants to `endpoint/<prefix>*` before any exists."""
    base = pipeline_name.removesuffix("-training").removesuffix("-train")
    base = re.sub(r"[^a-zA-Z0-9-]", "-", base)[: PREFIX_MAX - len("-clarify")].strip("-")
    return f"{base or 'sm'}-clarify"


def analysis_config(
    *,
    headers: list[str],
    label: str,
    baseline: list[list[float]],
    model_name: str,
    instance_type: str = ENDPOINT_INSTANCE_TYPE,
    endpoint_name_prefix: str | None = None,
    num_samples: int = NUM_SAMPLES,
    seed: int = 42,
    title: str = "Model explainability (SHAP)",
) -> dict[str, Any]:
    """Clarify's analysis config for a SHAP run of `model_name` on a headerless CSV dataset."""
    predictor: dict[str, Any] = {
        "model_name": model_name,
        "instance_type": instance_type,
        "initial_instance_count": 1,
        "content_type": "application/json",
        "accept_type": "application/json",
        "content_template": CONTENT_TEMPLATE,
        "record_template": RECORD_TEMPLATE,
        "label": PREDICTED_LABEL,
    }
    if endpoint_name_prefix:
        predictor["endpoint_name_prefix"] = endpoint_name_prefix
    return {
        "version": "1.0",
        "dataset_type": "text/csv",
        "headers": list(headers),
        "label": label,
        "methods": {
            "shap": {
                "baseline": baseline,
                "num_samples": num_samples,
                "agg_method": "mean_abs",
                "use_logit": False,
                "save_local_shap_values": True,
                "seed": seed,
            },
            "report": {"name": REPORT_NAME, "title": title},
        },
        "predictor": predictor,
    }


def _check_options(
    *, model_name: str, max_rows: int, num_samples: int, instance_type: str, prefix: str | None
) -> None:
    problems = []
    if not model_name.strip():
        problems.append(
            "--model-name is empty; pass the SageMaker Model name (the pipeline passes the "
            "ClarifyModel step's ModelName)"
        )
    if max_rows < 1:
        problems.append(f"--max-rows={max_rows} is not at least 1; pass a positive row cap")
    if num_samples < 1:
        problems.append(f"--num-samples={num_samples} is not at least 1; pass e.g. 100")
    if not instance_type.startswith("ml."):
        problems.append(
            f"--instance-type={instance_type!r} is not a SageMaker instance type (ml.*); "
            f"pass e.g. {ENDPOINT_INSTANCE_TYPE}"
        )
    if prefix is not None and (len(prefix) > PREFIX_MAX or not PREFIX_PATTERN.match(prefix)):
        problems.append(
            f"--endpoint-name-prefix={prefix!r} is not 1-{PREFIX_MAX} letters, digits and "
            "inner hyphens; pass clarify_endpoint_prefix(pipeline_name)"
        )
    if problems:
        raise StepError("; ".join(problems))


def _split(folder: Path, columns: list[str], role: str) -> Any:
    import pandas as pd

    file = split_file(folder)
    if file is None:
        raise StepError(
            f"{Path(folder) / SPLIT_FILES[0]} or {DATASET_FILE} is missing; point --{role} "
            f"at the prepare step's {role} split"
        )
    frame = pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StepError(
            f"the {role} split {file} lacks the contract's column(s) {', '.join(missing)}; "
            "run prepare with the same --contract"
        )
    frame = frame[columns]
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise StepError(
            f"column(s) {', '.join(bad)} of {file} are not numeric; Clarify's tabular SHAP "
            "needs numeric features and label (encode them in prepare)"
        )
    nulls = [c for c in columns if frame[c].isna().any()]
    if nulls:
        raise StepError(f"column(s) {', '.join(nulls)} of {file} have empty values")
    if frame.empty:
        raise StepError(f"the {role} split {file} has no rows")
    return frame


def write_clarify_inputs(
    train_dir: Path,
    test_dir: Path,
    *,
    contract: dict[str, Any],
    model_name: str,
    config_dir: Path,
    dataset_dir: Path,
    seed: int = 42,
    max_rows: int = MAX_ROWS,
    num_samples: int = NUM_SAMPLES,
    instance_type: str = ENDPOINT_INSTANCE_TYPE,
    endpoint_name_prefix: str | None = None,
) -> dict[str, Any]:
    """Write analysis_config.json and the headerless dataset; return the config."""
    _check_options(
        model_name=model_name,
        max_rows=max_rows,
        num_samples=num_samples,
        instance_type=instance_type,
        prefix=endpoint_name_prefix,
    )
    label = contract["label"]["column"]
    features = feature_columns(contract)
    headers = [*features, label]
    train = _split(train_dir, features, "train")
    test = _split(test_dir, headers, "test")
    if len(test) > max_rows:
        test = test.sample(n=max_rows, random_state=seed).sort_index()
    baseline = [[float(v) for v in train[features].mean(axis=0).to_list()]]
    config = analysis_config(
        headers=headers,
        label=label,
        baseline=baseline,
        model_name=model_name,
        instance_type=instance_type,
        endpoint_name_prefix=endpoint_name_prefix,
        num_samples=num_samples,
        seed=seed,
        title=f"{contract.get('name', 'model')}: explainability (SHAP)",
    )
    # Build both in memory first: nothing is written when either cannot be.
    csv_text = test.to_csv(index=False, header=False)
    dataset_dir = Path(dataset_dir)
    dataset_dir.mkdir(parents=True, exist_ok=True)
    (dataset_dir / DATASET_FILE).write_text(csv_text)
    write_json(Path(config_dir) / CONFIG_FILE, config)
    return config


def build_parser() -> argparse.ArgumentParser:
    """The step's command line (the SageMaker compiler's arguments must parse with it)."""
    parser = argparse.ArgumentParser(
        prog="pipelines.steps.clarify_config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--train", type=Path, required=True, help="prepare's train split")
    parser.add_argument("--test", type=Path, required=True, help="prepare's test split")
    parser.add_argument("--model-name", required=True, help="SageMaker Model Clarify explains")
    parser.add_argument("--config-dir", type=Path, required=True)
    parser.add_argument("--dataset-dir", type=Path, required=True)
    parser.add_argument("--contract", default="")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-rows", type=int, default=MAX_ROWS)
    parser.add_argument("--num-samples", type=int, default=NUM_SAMPLES)
    parser.add_argument("--instance-type", default=ENDPOINT_INSTANCE_TYPE)
    parser.add_argument("--endpoint-name-prefix", default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = write_clarify_inputs(
            args.train,
            args.test,
            contract=load_contract(args.contract),
            model_name=args.model_name,
            config_dir=args.config_dir,
            dataset_dir=args.dataset_dir,
            seed=args.seed,
            max_rows=args.max_rows,
            num_samples=args.num_samples,
            instance_type=args.instance_type,
            endpoint_name_prefix=args.endpoint_name_prefix,
        )
    except StepError as exc:
        print(f"clarify-config: {exc}", file=sys.stderr)
        return 2
    print(
        f"clarify-config: SHAP config for model {config['predictor']['model_name']}, "
        f"{len(config['headers']) - 1} features, baseline of 1 row"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
