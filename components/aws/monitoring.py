"""Drift monitoring: a SageMaker Model Monitor data-quality schedule that compares the
endpoint's captured traffic with the training baseline, run network-isolated with encrypted
inter-container traffic, volumes and reports (in the VPC when there is one).

A job that finds violations ends with the exit message `CompletedWithViolations`; an
EventBridge rule forwards exactly those job events to the alerts topic, and a CloudWatch
alarm on the rule's matches keeps an alarm state (OK / ALARM) for drift. Model Monitor's
per-feature metrics (`feature_baseline_drift_<feature>`) exist too, but their names depend on
the data, so the stack alarms on the feature-independent signal.

Baseline: Model Monitor reads `statistics.json` and `constraints.json` from
`s3://<bucket>/monitoring/baseline/v<model version>/`; they must be written (by a baselining
job over the version's training data) before the first scheduled run.

Note: AWS closes Model Monitor to new customers from 2026-07-30; existing accounts keep it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws.common import (
    aws_cron,
    bad,
    child,
    rule_dead_letters,
    rule_matched_alarm,
)
from core.errors import ArgsError, raise_problems
from core.regions import ANALYZER_ACCOUNTS


def analyzer_image(region: str) -> str:
    """URI of the built-in Model Monitor analyzer image in `region`."""
    return (
        f"{ANALYZER_ACCOUNTS[region]}.dkr.ecr.{region}.amazonaws.com/"
        "sagemaker-model-monitor-analyzer"
    )


@dataclass(frozen=True)
class DriftMonitoringArgs:
    schedule_name: str
    """Name of the monitoring schedule (and prefix of its job definition)."""
    endpoint_name: pulumi.Input[str]
    """Endpoint whose captured traffic is checked."""
    model_version: str
    """Model version served; selects the baseline folder."""
    bucket_name: pulumi.Input[str]
    """Artifact bucket holding the baseline and receiving the reports."""
    role_arn: pulumi.Input[str]
    """Role the monitoring jobs run as."""
    kms_key_arn: pulumi.Input[str]
    """Stack key for job volumes, reports and the dead-letter queue."""
    alarm_topic_arn: pulumi.Input[str]
    """SNS topic drift findings are sent to."""
    region: str
    """Region (selects the analyzer image)."""
    dlq_name: str
    """Dead-letter queue for findings that could not be delivered."""
    cron: str = "0 * * * *"
    """When the check runs (5-field cron, UTC; Model Monitor accepts hourly or daily)."""
    instance_type: str = "ml.m5.large"
    """Instance type of a monitoring job."""
    network_isolation: bool = True
    """Run the analyzer with no network access."""
    subnet_ids: list[pulumi.Input[str]] = field(default_factory=list)
    """Private subnets of the jobs (empty: SageMaker's own network)."""
    security_group_ids: list[pulumi.Input[str]] = field(default_factory=list)
    """Security groups of the jobs, with `subnet_ids`."""
    max_runtime_minutes: int = 60
    """A monitoring job is stopped after this many minutes (at most the schedule interval)."""


def validate_drift_monitoring_args(args: DriftMonitoringArgs) -> None:
    problems = []
    if args.region not in ANALYZER_ACCOUNTS:
        problems.append(
            bad(
                "region",
                args.region,
                "a region with the Model Monitor analyzer ("
                + ", ".join(sorted(ANALYZER_ACCOUNTS))
                + ")",
                "choose such a region",
            )
        )
    try:
        expr = aws_cron(args.cron)
        if not expr.startswith("cron(0 "):
            problems.append(
                bad(
                    "cron",
                    args.cron,
                    "hourly or daily at minute 0",
                    "set drift.checkCron to e.g. `0 * * * *`",
                )
            )
    except ArgsError as exc:
        problems.append(f"cron: {exc}; set drift.checkCron")
    if not args.instance_type.startswith("ml."):
        problems.append(
            bad(
                "instance_type",
                args.instance_type,
                "a SageMaker instance type",
                "pass e.g. ml.m5.large",
            )
        )
    if not 1 <= args.max_runtime_minutes <= 60:
        problems.append(
            bad(
                "max_runtime_minutes",
                args.max_runtime_minutes,
                "between 1 and 60 (an hourly schedule's interval)",
                "pass a shorter runtime",
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
    raise_problems("DriftMonitoring", problems)


def violations_pattern(schedule_arn: pulumi.Input[str]) -> dict:
    """EventBridge pattern: a job of the schedule finished and found violations."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Processing Job State Change"],
        "detail": {
            "MonitoringScheduleArn": [schedule_arn],
            "ExitMessage": [{"prefix": "CompletedWithViolations"}],
        },
    }


class DriftMonitoring(pulumi.ComponentResource):
    """Model Monitor data-quality schedule, violation rule and drift alarm."""

    schedule_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: DriftMonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_drift_monitoring_args(args)
        super().__init__("mlops:aws:DriftMonitoring", name, None, opts)
        base = pulumi.Output.concat("s3://", args.bucket_name, "/monitoring")
        baseline = pulumi.Output.concat(base, f"/baseline/v{args.model_version}")
        network: dict = {
            "enable_network_isolation": args.network_isolation,
            "enable_inter_container_traffic_encryption": True,
        }
        if args.subnet_ids:
            network["vpc_config"] = {
                "subnets": args.subnet_ids,
                "security_group_ids": args.security_group_ids,
            }
        job = aws.sagemaker.DataQualityJobDefinition(
            f"{name}-job",
            name=f"{args.schedule_name}-v{args.model_version}",
            role_arn=args.role_arn,
            data_quality_app_specification={
                "image_uri": analyzer_image(args.region),
                "environment": {"publish_cloudwatch_metrics": "Enabled"},
            },
            data_quality_baseline_config={
                "statistics_resource": {
                    "s3_uri": pulumi.Output.concat(baseline, "/statistics.json")
                },
                "constraints_resource": {
                    "s3_uri": pulumi.Output.concat(baseline, "/constraints.json")
                },
            },
            data_quality_job_input={
                "endpoint_input": {
                    "endpoint_name": args.endpoint_name,
                    "local_path": "/opt/ml/processing/input/endpoint",
                    "s3_data_distribution_type": "FullyReplicated",
                    "s3_input_mode": "File",
                }
            },
            data_quality_job_output_config={
                "kms_key_id": args.kms_key_arn,
                "monitoring_outputs": {
                    "s3_output": {
                        "s3_uri": pulumi.Output.concat(base, "/reports"),
                        "local_path": "/opt/ml/processing/output",
                        "s3_upload_mode": "EndOfJob",
                    }
                },
            },
            job_resources={
                "cluster_config": {
                    "instance_count": 1,
                    "instance_type": args.instance_type,
                    "volume_size_in_gb": 20,
                    "volume_kms_key_id": args.kms_key_arn,
                }
            },
            network_config=network,
            stopping_condition={"max_runtime_in_seconds": args.max_runtime_minutes * 60},
            opts=child(self),
        )
        schedule = aws.sagemaker.MonitoringSchedule(
            f"{name}-schedule",
            name=args.schedule_name,
            monitoring_schedule_config={
                "monitoring_type": "DataQuality",
                "monitoring_job_definition_name": job.name,
                "schedule_config": {"schedule_expression": aws_cron(args.cron)},
            },
            opts=child(self),
        )
        dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=args.dlq_name,
            kms_master_key_id=args.kms_key_arn,
            message_retention_seconds=14 * 24 * 3600,
            opts=child(self),
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-violations",
            name=f"{args.schedule_name}-violations",
            description="A data-quality monitoring job found violations (drift)",
            event_pattern=pulumi.Output.json_dumps(violations_pattern(schedule.arn)),
            tags={"mlops:drift": "endpoint-traffic"},
            opts=child(self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-violations-alert",
            rule=rule.name,
            arn=args.alarm_topic_arn,
            retry_policy={"maximum_retry_attempts": 10, "maximum_event_age_in_seconds": 86400},
            dead_letter_config={"arn": dlq.arn},
            opts=child(self),
        )
        rule_dead_letters(
            name,
            self,
            queue_url=dlq.url,
            queue_arn=dlq.arn,
            rule_arn=rule.arn,
            sid="ViolationRuleDeadLetters",
        )
        rule_matched_alarm(
            f"{name}-drift-alarm",
            self,
            alarm_name=f"{args.schedule_name}-drift",
            description="Captured traffic drifted from the training baseline",
            rule_name=rule.name,
            topic_arn=args.alarm_topic_arn,
            notify_ok=True,
        )
        self.schedule_name = schedule.name
        self.register_outputs({"scheduleName": self.schedule_name})
