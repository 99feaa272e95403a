"""Alerts: the encrypted SNS topic every alarm, budget alert, drift finding and (without a CI
provider) release announcement is sent to. Subscribe people or a pager to it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child, policy
from core.errors import raise_problems

PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com", "budgets.amazonaws.com")


@dataclass(frozen=True)
class AlertsArgs:
    topic_name: str
    """Name of the SNS topic."""
    account_id: pulumi.Input[str]
    """Account whose alarms, rules and budgets may publish."""
    kms_key_arn: pulumi.Input[str]
    """Stack key that encrypts messages at rest."""
    publishers: tuple[str, ...] = PUBLISHERS
    """AWS services allowed to publish, each for this account only."""


def validate_alerts_args(args: AlertsArgs) -> None:
    problems = []
    for service in args.publishers:
        if service == "*" or not service.endswith(".amazonaws.com"):
            problems.append(
                bad(
                    "publishers",
                    service,
                    "an AWS service principal",
                    "name services such as cloudwatch.amazonaws.com",
                )
            )
    if not args.topic_name or len(args.topic_name) > 256:
        problems.append(
            bad("topic_name", args.topic_name, "1-256 characters", "use a shorter name")
        )
    raise_problems("Alerts", problems)


class Alerts(pulumi.ComponentResource):
    """KMS-encrypted SNS topic that alarms, budgets and rules publish to."""

    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None):
        validate_alerts_args(args)
        super().__init__("mlops:aws:Alerts", name, None, opts)
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=args.topic_name,
            kms_master_key_id=args.kms_key_arn,
            opts=child(self),
        )
        aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=topic.arn,
            policy=policy(
                [
                    {
                        "Sid": "StackServicesPublish",
                        "Effect": "Allow",
                        "Principal": {"Service": list(args.publishers)},
                        "Action": "sns:Publish",
                        "Resource": topic.arn,
                        "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                    },
                ]
            ),
            opts=child(self),
        )
        self.topic_arn = topic.arn
        self.register_outputs({"topicArn": self.topic_arn})
