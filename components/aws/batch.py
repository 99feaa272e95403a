"""Batch scoring: the serving mode beside the real-time endpoint, on a schedule.

A SageMaker model created from the configured model package version (the same image and
artifacts the endpoint serves), network-isolated and, in private mode, in the stack's private
subnets; a scoring pipeline (`aws.sagemaker.Pipeline`) whose one TransformStep scores every
object under `s3://<bucket>/<batch.inputPrefix>` into `<batch.outputPrefix><execution id>/`,
with the ML storage volume and the output encrypted with the stack key (compiled by
`pipelines/compilers/sagemaker_batch.py`); and an EventBridge Scheduler schedule that starts
it on `batch.cron`, retries, and parks undeliverable starts in an encrypted dead-letter queue.

Grants: the pipeline role may create transform jobs (the only jobs a scoring pipeline starts)
and the trigger role may start this pipeline and write its dead-letter queue; both as inline
policies of this component on the existing roles, scoped to the names below. The transform
job reads and writes S3 as the model's execution role (the serving role), which already
reads and writes the artifact bucket with the stack key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.common import arn, aws_cron, bad, child, policy
from components.aws.pipeline import SAGEMAKER_SHAPES
from core.errors import ArgsError, raise_problems
from pipelines.compilers.cache import compiled

PURPOSE = "batch-scoring"
INPUT_PARAMETER = "InputUri"
_PREFIX = re.compile(r"[a-z0-9][a-z0-9/_-]*/")


@dataclass(frozen=True)
class BatchScoringArgs:
    pipeline_name: str
    """Name of the scoring pipeline (`<prefix>-scoring`)."""
    schedule_name: str
    """Name of the EventBridge Scheduler schedule."""
    dlq_name: str
    """Name of the dead-letter queue of undeliverable scheduled starts."""
    cron: str
    """5-field cron expression (UTC) of the schedule (`batch.cron`)."""
    region: str
    """Region of the stack."""
    account_id: pulumi.Input[str]
    """Account of the stack (scopes the grants)."""
    model_package_arn: pulumi.Input[str]
    """Approved model package version to score with (`mlops:model`)."""
    model_version: str
    """Version number of that package."""
    bucket_name: pulumi.Input[str]
    """Artifact bucket holding the input and output prefixes."""
    kms_key_arn: pulumi.Input[str]
    """Stack key: ML storage volume, output, schedule and dead-letter queue."""
    pipeline_role_arn: pulumi.Input[str]
    """Role the scoring pipeline runs as; given the transform-job grant."""
    serving_role_arn: pulumi.Input[str]
    """Role the model container runs as (reads input, writes output)."""
    trigger_role_arn: pulumi.Input[str]
    """Role the schedule assumes; given the start grant on this pipeline."""
    instance_type: str = "ml.m5.large"
    """Transform instance type (`batch.instanceType`)."""
    instance_count: int = 1
    """Transform instances (`batch.instanceCount`)."""
    input_prefix: str = "batch/input/"
    """Key prefix the job reads (`batch.inputPrefix`)."""
    output_prefix: str = "batch/output/"
    """Key prefix the job writes under (`batch.outputPrefix`)."""
    subnet_ids: list[pulumi.Input[str]] = field(default_factory=list)
    """Private subnets of the model (private mode); empty: SageMaker's own network."""
    security_group_ids: list[pulumi.Input[str]] = field(default_factory=list)
    """Security groups of the model, with `subnet_ids`."""
    max_retries: int = 3
    """Delivery attempts of a scheduled start before it goes to the dead-letter queue."""


def validate_batch_scoring_args(args: BatchScoringArgs) -> None:
    problems = []
    try:
        aws_cron(args.cron)
    except ArgsError as exc:
        problems.append(f"cron: {exc}; set batch.cron")
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}", args.pipeline_name):
        problems.append(
            bad(
                "pipeline_name",
                args.pipeline_name,
                "1-256 letters, digits and hyphens",
                "use a shorter client name",
            )
        )
    if not args.model_version:
        problems.append(bad("model_version", "", "set", "set mlops:model before batch.enabled"))
    if not args.instance_type.startswith("ml."):
        problems.append(
            bad(
                "instance_type",
                args.instance_type,
                "a SageMaker instance type (ml.*)",
                "set batch.instanceType",
            )
        )
    if not 1 <= args.instance_count <= 20:
        problems.append(
            bad(
                "instance_count", args.instance_count, "between 1 and 20", "set batch.instanceCount"
            )
        )
    for name in ("input_prefix", "output_prefix"):
        value = getattr(args, name)
        if not _PREFIX.fullmatch(value):
            fix = "set batch." + ("inputPrefix" if name == "input_prefix" else "outputPrefix")
            problems.append(bad(name, value, "a key prefix ending in '/'", fix))
    if args.input_prefix.startswith(args.output_prefix) or args.output_prefix.startswith(
        args.input_prefix
    ):
        problems.append(
            bad(
                "output_prefix",
                args.output_prefix,
                f"apart from input_prefix {args.input_prefix!r}",
                "set batch.outputPrefix to another folder so outputs are not scored next run",
            )
        )
    if bool(args.subnet_ids) != bool(args.security_group_ids):
        problems.append(
            bad(
                "security_group_ids",
                args.security_group_ids,
                "given together with subnet_ids",
                "pass both or neither",
            )
        )
    if not 0 <= args.max_retries <= 185:
        problems.append(
            bad("max_retries", args.max_retries, "between 0 and 185", "pass what Scheduler accepts")
        )
    raise_problems("BatchScoring", problems)


def _role_name(role_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.from_input(role_arn).apply(lambda a: a.rsplit("/", 1)[-1])


class BatchScoring(pulumi.ComponentResource):
    """Scheduled SageMaker batch transform of the artifact store's input prefix."""

    pipeline_name: pulumi.Output[str]
    pipeline_arn: pulumi.Output[str]
    schedule_name: pulumi.Output[str]
    model_name: pulumi.Output[str]
    input_uri: pulumi.Output[str]
    output_uri: pulumi.Output[str]

    def __init__(
        self, name: str, args: BatchScoringArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_batch_scoring_args(args)
        super().__init__("mlops:aws:BatchScoring", name, None, opts)
        sm = lambda resource: arn("sagemaker", args.region, args.account_id, resource)  # noqa: E731
        tags = {"mlops:purpose": PURPOSE, "mlops:model-version": args.model_version}
        self.input_uri = pulumi.Output.concat("s3://", args.bucket_name, "/", args.input_prefix)
        self.output_uri = pulumi.Output.concat("s3://", args.bucket_name, "/", args.output_prefix)

        model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=args.serving_role_arn,
            primary_container={"model_package_name": args.model_package_arn},
            enable_network_isolation=True,
            vpc_config={"subnets": args.subnet_ids, "security_group_ids": args.security_group_ids}
            if args.subnet_ids
            else None,
            tags=tags,
            opts=child(self),
        )
        grant = aws.iam.RolePolicy(
            f"{name}-pipeline-grant",
            role=_role_name(args.pipeline_role_arn),
            policy=policy(
                [
                    {
                        "Sid": "BatchTransformJobs",
                        "Effect": "Allow",
                        "Action": [
                            "sagemaker:CreateTransformJob",
                            "sagemaker:DescribeTransformJob",
                            "sagemaker:StopTransformJob",
                            "sagemaker:AddTags",
                        ],
                        "Resource": sm("transform-job/pipelines-*"),
                    }
                ]
            ),
            opts=child(self),
        )

        inputs = {
            "pipeline_name": args.pipeline_name,
            "region": args.region,
            "model_version": args.model_version,
            "input_prefix": args.input_prefix,
            "output_prefix": args.output_prefix,
            "instance_type": args.instance_type,
            "instance_count": args.instance_count,
        }

        def compile_batch(values: Mapping[str, str]) -> str:
            # lazy: the pipeline SDKs (sagemaker, azure-ai-ml, hera) load only when compiling
            from pipelines.compilers.sagemaker_batch import BatchJob, compile_sagemaker_batch

            return compile_sagemaker_batch(BatchJob(**inputs, **values))

        def compile_(values: list[Any]) -> str:
            role, bucket, key, model_name = values
            return compiled(
                "sagemaker-batch",
                inputs=inputs,
                resolved={
                    "role_arn": role,
                    "bucket": bucket,
                    "kms_key_id": key,
                    "model_name": model_name,
                },
                shapes=SAGEMAKER_SHAPES,
                compile=compile_batch,
            )

        definition = pulumi.Output.all(
            args.pipeline_role_arn, args.bucket_name, args.kms_key_arn, model.name
        ).apply(compile_)
        pipeline = aws.sagemaker.Pipeline(
            f"{name}-pipeline",
            pipeline_name=args.pipeline_name,
            pipeline_display_name=args.pipeline_name,
            pipeline_description=f"batch scoring with model version {args.model_version}",
            pipeline_definition=definition,
            role_arn=args.pipeline_role_arn,
            parallelism_configuration={"max_parallel_execution_steps": 1},
            tags=tags,
            opts=child(self, depends_on=[grant]),
        )
        dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=args.dlq_name,
            kms_master_key_id=args.kms_key_arn,
            message_retention_seconds=14 * 24 * 3600,
            opts=child(self),
        )
        start = aws.iam.RolePolicy(
            f"{name}-trigger-grant",
            role=_role_name(args.trigger_role_arn),
            policy=policy(
                [
                    {
                        "Sid": "StartScoring",
                        "Effect": "Allow",
                        "Action": ["sagemaker:StartPipelineExecution"],
                        "Resource": pipeline.arn,
                    },
                    {
                        "Sid": "ScoringDeadLetters",
                        "Effect": "Allow",
                        "Action": ["sqs:SendMessage"],
                        "Resource": dlq.arn,
                    },
                ]
            ),
            opts=child(self),
        )
        schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            name=args.schedule_name,
            description=f"Batch scoring: start {args.pipeline_name}",
            schedule_expression=aws_cron(args.cron),
            schedule_expression_timezone="UTC",
            flexible_time_window={"mode": "OFF"},
            kms_key_arn=args.kms_key_arn,
            state="ENABLED",
            target={
                "arn": pipeline.arn,
                "role_arn": args.trigger_role_arn,
                "sagemaker_pipeline_parameters": {
                    "pipeline_parameters": [{"name": INPUT_PARAMETER, "value": self.input_uri}],
                },
                "retry_policy": {
                    "maximum_retry_attempts": args.max_retries,
                    "maximum_event_age_in_seconds": 3600,
                },
                "dead_letter_config": {"arn": dlq.arn},
            },
            opts=child(self, depends_on=[start]),
        )
        self.pipeline_name = pipeline.pipeline_name
        self.pipeline_arn = pipeline.arn
        self.schedule_name = schedule.name
        self.model_name = model.name
        self.register_outputs(
            {
                "pipelineName": self.pipeline_name,
                "scheduleName": self.schedule_name,
                "inputUri": self.input_uri,
                "outputUri": self.output_uri,
            }
        )
