"""Data drift alerts: every training batch is compared with the training baseline by the
pipeline's `validate-data` step (PSI and KS per feature, plus the data contract), which fails
when the batch drifted. An EventBridge rule forwards exactly those step failures of this
stack's pipeline to the alerts topic, and a CloudWatch alarm on the rule's matches keeps a
drift alarm state. This works in every tier, with or without an endpoint; the endpoint's
captured traffic is watched separately by Model Monitor (`monitoring.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child, rule_dead_letters, rule_matched_alarm
from core.errors import raise_problems

STEP_EVENT = "SageMaker Model Building Pipeline Execution Step Status Change"
DRIFT_TAG = "mlops:drift"


@dataclass(frozen=True)
class DataDriftAlertsArgs:
    rule_name: str
    """Name of the EventBridge rule (and prefix of the alarm's name)."""
    pipeline_arn: pulumi.Input[str]
    """Pipeline whose validation step is watched."""
    alarm_topic_arn: pulumi.Input[str]
    """SNS topic the alerts go to."""
    kms_key_arn: pulumi.Input[str]
    """Stack key of the dead-letter queue."""
    dlq_name: str
    """Dead-letter queue for alerts that could not be delivered."""
    step_name: str = "ValidateData"
    """Name of the validation step in the compiled pipeline."""


def validate_data_drift_alerts_args(args: DataDriftAlertsArgs) -> None:
    problems = []
    if not args.step_name or not args.step_name[0].isupper():
        problems.append(
            bad(
                "step_name",
                args.step_name,
                "a compiled step name (CamelCase)",
                "pass the validate-data step's name, ValidateData",
            )
        )
    if not 1 <= len(args.rule_name) <= 64:
        problems.append(
            bad("rule_name", args.rule_name, "1-64 characters", "use a shorter client name")
        )
    raise_problems("DataDriftAlerts", problems)


def step_failed_pattern(pipeline_arn: pulumi.Input[str], step_name: str) -> dict:
    """EventBridge pattern: the pipeline's `step_name` step failed."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": [STEP_EVENT],
        "detail": {
            "pipelineArn": [pipeline_arn],
            "stepName": [step_name],
            "currentStepStatus": ["Failed"],
        },
    }


class DataDriftAlerts(pulumi.ComponentResource):
    """Alert when a new training batch drifted from the baseline (validation step failed)."""

    rule_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: DataDriftAlertsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_data_drift_alerts_args(args)
        super().__init__("mlops:aws:DataDriftAlerts", name, None, opts)
        rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=args.rule_name,
            description="A training batch drifted from the baseline or broke its data contract",
            event_pattern=pulumi.Output.json_dumps(
                step_failed_pattern(args.pipeline_arn, args.step_name)
            ),
            tags={DRIFT_TAG: "training-data"},
            opts=child(self),
        )
        dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=args.dlq_name,
            kms_master_key_id=args.kms_key_arn,
            message_retention_seconds=14 * 24 * 3600,
            opts=child(self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-alert",
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
            sid="DriftRuleDeadLetters",
        )
        rule_matched_alarm(
            f"{name}-alarm",
            self,
            alarm_name=f"{args.rule_name}-alarm",
            description="A training batch drifted from the baseline",
            rule_name=rule.name,
            topic_arn=args.alarm_topic_arn,
        )
        self.rule_name = rule.name
        self.register_outputs({"ruleName": self.rule_name})
