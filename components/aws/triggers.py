"""Continuous training: an EventBridge Scheduler schedule that starts the pipeline on a cron,
and an EventBridge rule that starts it when new raw data lands under the raw-data prefix of
the artifact bucket. Both pass the raw-data folder as the pipeline's `DataUri`, retry, and
park undeliverable starts in an encrypted dead-letter queue."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import (
    aws_cron,
    bad,
    child,
    rule_dead_letters,
)
from core.errors import ArgsError, raise_problems

DATA_URI_PARAMETER = "DataUri"


@dataclass(frozen=True)
class ContinuousTrainingArgs:
    schedule_name: str
    """Name of the EventBridge Scheduler schedule."""
    cron: str
    """5-field cron expression (UTC) of the schedule."""
    pipeline_arn: pulumi.Input[str]
    """Pipeline both triggers start."""
    role_arn: pulumi.Input[str]
    """Role the schedule and the rule assume to start the pipeline."""
    bucket_name: pulumi.Input[str]
    """Artifact bucket whose raw-data prefix is watched."""
    kms_key_arn: pulumi.Input[str]
    """Stack key that encrypts the schedule and the dead-letter queue."""
    dlq_name: str
    """Name of the dead-letter queue for starts that could not be delivered."""
    rule_name: str
    """Name of the data-change rule."""
    raw_prefix: str = "raw/"
    """Key prefix of new training data in the bucket."""
    data_trigger: bool = True
    """Also start the pipeline when new raw data lands."""
    max_retries: int = 3
    """Delivery attempts of a start before it goes to the dead-letter queue."""


def validate_continuous_training_args(args: ContinuousTrainingArgs) -> None:
    problems = []
    try:
        aws_cron(args.cron)
    except ArgsError as exc:
        problems.append(f"cron: {exc}; set schedule.cron")
    if not re.fullmatch(r"[\w.-]+/", args.raw_prefix):
        problems.append(
            bad("raw_prefix", args.raw_prefix, "a key prefix ending in '/'", "pass e.g. raw/")
        )
    if not 0 <= args.max_retries <= 185:
        problems.append(
            bad(
                "max_retries",
                args.max_retries,
                "between 0 and 185",
                "pass what EventBridge accepts",
            )
        )
    raise_problems("ContinuousTraining", problems)


class ContinuousTraining(pulumi.ComponentResource):
    """Scheduled and data-driven pipeline starts."""

    schedule_name: pulumi.Output[str]
    rule_name: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ContinuousTrainingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_continuous_training_args(args)
        super().__init__("mlops:aws:ContinuousTraining", name, None, opts)
        data_uri = pulumi.Output.concat("s3://", args.bucket_name, "/", args.raw_prefix)
        dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=args.dlq_name,
            kms_master_key_id=args.kms_key_arn,
            message_retention_seconds=14 * 24 * 3600,
            opts=child(self),
        )
        schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            name=args.schedule_name,
            description="Continuous training: start the training pipeline",
            schedule_expression=aws_cron(args.cron),
            schedule_expression_timezone="UTC",
            flexible_time_window={"mode": "OFF"},
            kms_key_arn=args.kms_key_arn,
            state="ENABLED",
            target={
                "arn": args.pipeline_arn,
                "role_arn": args.role_arn,
                "sagemaker_pipeline_parameters": {
                    "pipeline_parameters": [{"name": DATA_URI_PARAMETER, "value": data_uri}],
                },
                "retry_policy": {
                    "maximum_retry_attempts": args.max_retries,
                    "maximum_event_age_in_seconds": 3600,
                },
                "dead_letter_config": {"arn": dlq.arn},
            },
            opts=child(self),
        )
        self.schedule_name = schedule.name
        self.rule_name = None
        if args.data_trigger:
            rule = aws.cloudwatch.EventRule(
                f"{name}-new-data",
                name=args.rule_name,
                description="Start training when new raw data lands in the artifact store",
                event_pattern=pulumi.Output.json_dumps(
                    data_change_pattern(args.bucket_name, args.raw_prefix)
                ),
                opts=child(self),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-new-data-target",
                rule=rule.name,
                arn=args.pipeline_arn,
                role_arn=args.role_arn,
                sagemaker_pipeline_target={
                    "pipeline_parameter_lists": [{"name": DATA_URI_PARAMETER, "value": data_uri}],
                },
                retry_policy={
                    "maximum_retry_attempts": args.max_retries,
                    "maximum_event_age_in_seconds": 3600,
                },
                dead_letter_config={"arn": dlq.arn},
                opts=child(self),
            )
            rule_dead_letters(
                name,
                self,
                queue_url=dlq.url,
                queue_arn=dlq.arn,
                rule_arn=rule.arn,
                sid="DataRuleDeadLetters",
            )
            self.rule_name = rule.name
        self.register_outputs({"scheduleName": self.schedule_name})


def data_change_pattern(bucket: pulumi.Input[str], raw_prefix: str) -> dict:
    """EventBridge pattern of an object created under `raw_prefix` in `bucket`."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": raw_prefix}]}},
    }
