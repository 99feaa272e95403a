"""Compile the batch-scoring pipeline for SageMaker (sagemaker SDK v3): one TransformStep.

    definition_json = compile_sagemaker_batch(BatchJob(...))

The scoring pipeline runs a batch-transform job with the stack's batch model (a SageMaker
model Pulumi owns, created from the configured model package version, network-isolated and
in the stack's VPC in private mode) over every object under `InputUri` (the artifact store's
`batch.inputPrefix`), and writes one `<object>.out` per input object under
`<OutputUri>/<execution id>/` (the `batch.outputPrefix`), so a re-run never overwrites an
earlier run's predictions. The ML storage volume and the output are encrypted with the stack
key. Each input object is sent whole (SingleRecord, no split) so a CSV keeps its header row,
which the MLflow scoring server needs; objects must stay under `MAX_PAYLOAD_MB`.

Built offline exactly like the training pipeline (`pipelines/compilers/sagemaker.py`): the
same `_offline_env` / `_offline_session`, no credentials, no network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pipelines.compilers.sagemaker import _offline_env, _offline_session

STEP_NAME = "Score"
INPUT_PARAMETER = "InputUri"
OUTPUT_PARAMETER = "OutputUri"
MAX_PAYLOAD_MB = 100
CONTENT_TYPES = ("text/csv", "application/json")


@dataclass(frozen=True)
class BatchJob:
    """Plain values the scoring pipeline is compiled from (no Pulumi Outputs)."""

    pipeline_name: str
    """Name of the scoring pipeline."""
    role_arn: str
    """Role the pipeline runs as (creates the transform job)."""
    bucket: str
    """Artifact bucket holding the input and output prefixes."""
    region: str
    """Region of the stack."""
    model_name: str
    """SageMaker model the transform job serves (the stack's batch model)."""
    model_version: str
    """Model package version that model was created from (recorded in the definition)."""
    kms_key_id: str
    """Stack key for the ML storage volume and the output."""
    input_prefix: str = "batch/input/"
    """Key prefix the job reads."""
    output_prefix: str = "batch/output/"
    """Key prefix the job writes under (one folder per execution)."""
    instance_type: str = "ml.m5.large"
    """Transform instance type."""
    instance_count: int = 1
    """Transform instances."""
    content_type: str = "text/csv"
    """MIME type of the input objects (text/csv or application/json)."""
    max_runtime_minutes: int = 120
    """Upper bound of one invocation (per object) in minutes, at most 60."""


def validate_batch_job(job: BatchJob) -> list[str]:
    """Every problem of `job`: field, bad value, allowed values, fix."""
    problems: list[str] = []

    def bad(name: str, value: Any, allowed: str, fix: str) -> None:
        problems.append(f"{name}={value!r} is not {allowed}; {fix}")

    if not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+", job.role_arn):
        bad("role_arn", job.role_arn, "an IAM role ARN", "pass the pipeline role's ARN")
    for name in ("pipeline_name", "bucket", "region", "model_name", "model_version"):
        if not getattr(job, name):
            bad(name, "", "set", f"pass the stack's {name}")
    if not job.kms_key_id:
        bad("kms_key_id", "", "a KMS key", "pass the stack key: volumes and output are encrypted")
    for name in ("input_prefix", "output_prefix"):
        value = getattr(job, name)
        if not re.fullmatch(r"[a-z0-9][a-z0-9/_-]*/", value):
            bad(name, value, "a key prefix ending in '/'", f"set batch.{_camel(name)}")
    if job.input_prefix.startswith(job.output_prefix) or job.output_prefix.startswith(
        job.input_prefix
    ):
        bad(
            "output_prefix",
            job.output_prefix,
            f"apart from input_prefix {job.input_prefix!r} (outputs would be scored next run)",
            "set batch.outputPrefix to a different folder",
        )
    if not job.instance_type.startswith("ml."):
        bad("instance_type", job.instance_type, "a SageMaker ml.* type", "set batch.instanceType")
    if not 1 <= job.instance_count <= 20:
        bad("instance_count", job.instance_count, "between 1 and 20", "set batch.instanceCount")
    if job.content_type not in CONTENT_TYPES:
        bad("content_type", job.content_type, "one of " + ", ".join(CONTENT_TYPES), "pass one")
    return problems


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def compile_sagemaker_batch(job: BatchJob) -> str:
    """The scoring pipeline definition JSON for `job` (offline; plain strings in)."""
    problems = validate_batch_job(job)
    if problems:
        raise ValueError(
            "cannot compile the SageMaker scoring pipeline:\n  - " + "\n  - ".join(problems)
        )
    with _offline_env(job.region):
        return _build(job)


def _build(job: BatchJob) -> str:
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.mlops.workflow import Pipeline, TransformStep

    session = _offline_session(job.region, job.bucket)
    input_uri = ParameterString(
        name=INPUT_PARAMETER, default_value=f"s3://{job.bucket}/{job.input_prefix}"
    )
    output_uri = ParameterString(
        name=OUTPUT_PARAMETER,
        default_value=f"s3://{job.bucket}/{job.output_prefix.rstrip('/')}",
    )
    transformer = Transformer(
        model_name=job.model_name,
        instance_count=job.instance_count,
        instance_type=job.instance_type,
        strategy="SingleRecord",
        assemble_with="Line",
        accept=job.content_type,
        output_path=Join(on="/", values=[output_uri, ExecutionVariables.PIPELINE_EXECUTION_ID]),
        output_kms_key=job.kms_key_id,
        volume_kms_key=job.kms_key_id,
        max_concurrent_transforms=1,
        max_payload=MAX_PAYLOAD_MB,
        env={"MLOPS_MODEL_VERSION": job.model_version, "MLOPS_SERVING_MODE": "batch"},
        base_transform_job_name=f"{job.pipeline_name}-score"[:32],
        sagemaker_session=session,
    )
    step = TransformStep(
        name=STEP_NAME,
        description=f"Score every object under {INPUT_PARAMETER} with model version "
        f"{job.model_version}",
        step_args=transformer.transform(
            data=input_uri,
            data_type="S3Prefix",
            content_type=job.content_type,
            split_type="None",
            model_client_config={
                "InvocationsTimeoutInSeconds": min(job.max_runtime_minutes, 60) * 60,
                "InvocationsMaxRetries": 1,
            },
        ),
    )
    pipeline = Pipeline(
        name=job.pipeline_name,
        parameters=[input_uri, output_uri],
        steps=[step],
        sagemaker_session=session,
    )
    definition = json.loads(pipeline.definition())
    # Pipeline-definition Metadata takes string values (<= 1024 chars): a JSON string here.
    definition.setdefault("Metadata", {})["mlops"] = json.dumps(
        {"serving_mode": "batch", "model_version": job.model_version}, sort_keys=True
    )
    return json.dumps(definition, sort_keys=True)
