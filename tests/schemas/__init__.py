"""Upstream schemas vendored for the suite (`upstream/`, provenance in `upstream/SOURCES.json`
and `upstream/README.md`) and the validators the suite uses with them."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

UPSTREAM = Path(__file__).parent / "upstream"


@cache
def upstream(name: str) -> dict[str, Any]:
    """The vendored schema `upstream/<name>.json.gz`, parsed."""
    with gzip.open(UPSTREAM / f"{name}.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)


def errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """Every violation as `path: message` (the validator class the schema declares)."""
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator = cls(schema)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:300]}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


def sagemaker_definition_errors(definition: dict[str, Any]) -> list[str]:
    """A SageMaker pipeline definition against AWS's published pipeline-definition schema,
    relaxed narrowly where the schema lags the service (see `sagemaker_schema`)."""
    return errors(sagemaker_schema(), definition)


@cache
def sagemaker_schema() -> dict[str, Any]:
    """AWS's schema (aws-sagemaker-mlops/sagemaker-model-building-pipeline-definition-JSON-schema,
    `upstream/SOURCES.json`) with `Version`, `Metadata` (string values <= 1024 chars, keys
    `[A-Za-z0-9-_]{1,128}`) and `Parameters` checked exactly as published.

    Relaxed, because the schema lags botocore and the service in what the SageMaker SDK itself
    writes: `PropertyFiles` on Processing steps and the `Std:JsonGet` condition operand, and
    also `Std:Join` over execution variables in S3 URIs, `StoppingCondition.MaxWaitTimeInSeconds`
    (managed spot training), `S3DataDistributionType`, and the top-level `MlflowConfig` and
    `PipelineExperimentConfig`. So each step is checked here for its `Name` and `Type` only; the
    arguments of every job step are checked against botocore's service models (the request
    shapes the service validates) in tests/pipelines/test_sagemaker.py."""
    schema = json.loads(json.dumps(upstream("sagemaker-pipeline-definition")))
    schema["properties"]["Steps"] = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["Name", "Type"],
            "properties": {"Name": {"$ref": "#/definitions/StepName"}, "Type": {"type": "string"}},
        },
    }
    for key in ("MlflowConfig", "PipelineExperimentConfig"):
        schema["properties"].setdefault(key, {"type": ["object", "null"]})
    return schema
