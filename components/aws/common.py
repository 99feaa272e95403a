"""Helpers shared by the AWS components: argument checks (raising core.errors.ArgsError), child
options, policy documents, cron conversion and the stack's resource names."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pulumi

from core.errors import ArgsError, problem
from core.names import StackNames


def bad(field: str, value: Any, allowed: str, fix: str) -> str:
    """The house message: field, bad value, allowed values, fix."""
    return problem(field, value, allowed, fix)


def child(parent: pulumi.Resource, **kwargs: Any) -> pulumi.ResourceOptions:
    """Options of a component's child resource."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)


def stateful(parent: pulumi.Resource, protect: bool, **kwargs: Any) -> pulumi.ResourceOptions:
    """Options of a stateful store: protected and retained on delete when `protect` is set."""
    return pulumi.ResourceOptions(
        parent=parent, protect=protect, retain_on_delete=protect, **kwargs
    )


def policy(statements: Iterable[Mapping[str, Any]]) -> pulumi.Output[str]:
    """An IAM policy document (JSON) from statements whose values may be Outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def rule_dead_letters(
    name: str,
    parent: pulumi.Resource,
    *,
    queue_url: pulumi.Input[str],
    queue_arn: pulumi.Input[str],
    rule_arn: pulumi.Input[str],
    sid: str,
) -> Any:
    """`<name>-dlq-policy`: lets EventBridge put undeliverable events of one rule (and only
    that rule) into its dead-letter queue."""
    import pulumi_aws as aws

    return aws.sqs.QueuePolicy(
        f"{name}-dlq-policy",
        queue_url=queue_url,
        policy=policy(
            [
                {
                    "Sid": sid,
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
                }
            ]
        ),
        opts=child(parent),
    )


def rule_matched_alarm(
    resource_name: str,
    parent: pulumi.Resource,
    *,
    alarm_name: pulumi.Input[str],
    description: str,
    rule_name: pulumi.Input[str],
    topic_arn: pulumi.Input[str],
    notify_ok: bool = False,
) -> Any:
    """An alarm that fires (to the alerts topic) when an EventBridge rule matched an event in
    the last hour."""
    import pulumi_aws as aws

    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=alarm_name,
        alarm_description=description,
        namespace="AWS/Events",
        metric_name="MatchedEvents",
        dimensions={"RuleName": rule_name},
        statistic="Sum",
        period=3600,
        evaluation_periods=1,
        comparison_operator="GreaterThanThreshold",
        threshold=0,
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn] if notify_ok else None,
        opts=child(parent),
    )


def trust(*services: str, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """A trust policy letting AWS services assume a role on behalf of this account only."""
    return policy(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": list(services)},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ]
    )


def aws_cron(expr: str) -> str:
    """A 5-field UTC cron (`m h dom mon dow`) as an AWS 6-field `cron(...)` expression.

    AWS needs `?` in one of day-of-month / day-of-week and numbers weekdays 1 (SUN) to 7 (SAT),
    where 5-field cron uses 0 (SUN) to 6 (SAT)."""
    fields = expr.split()
    if len(fields) != 5:
        raise ArgsError(bad("cron", expr, "a 5-field cron expression", "use `m h dom mon dow`"))
    minute, hour, dom, month, dow = fields
    if dom == "*" and dow == "*":
        dom = "?"
    elif dow == "*":
        dow = "?"
    else:
        if dom != "*":
            raise ArgsError(
                bad(
                    "cron",
                    expr,
                    "supported by AWS (day-of-month and day-of-week both set)",
                    "set only one of day-of-month and day-of-week",
                )
            )
        dom = "?"
        dow = _shift_weekdays(dow)
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


def _shift_weekdays(field: str) -> str:
    def one(token: str) -> str:
        if token == "*":
            return token
        return str(int(token) % 7 + 1)

    parts = []
    for item in field.split(","):
        base, _, step = item.partition("/")
        rng = "-".join(one(t) for t in base.split("-"))
        parts.append(f"{rng}/{step}" if step else rng)
    return ",".join(parts)


def global_bucket_name(
    names: StackNames, account_id: pulumi.Input[str], region: str, purpose: str
) -> pulumi.Output[str]:
    """Globally unique bucket name: `<prefix>-<account>-<region>-<purpose>` (<= 63 chars)."""
    return pulumi.Output.concat(names.prefix, "-", account_id, "-", region, "-", purpose)


def partition(region: str) -> str:
    """The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def arn(
    service: str, region: str, account_id: pulumi.Input[str], resource: str
) -> pulumi.Output[str]:
    """`arn:<partition>:<service>:<region>:<account>:<resource>`."""
    return pulumi.Output.concat(
        "arn:", partition(region), ":", service, ":", region, ":", account_id, ":", resource
    )


def dumps(value: Any) -> str:
    """Compact, stable JSON."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def role_arn(region: str, account_id: pulumi.Input[str], role_name: str) -> pulumi.Output[str]:
    """ARN of an IAM role by name (IAM is global: no region in the ARN)."""
    return pulumi.Output.concat(
        "arn:", partition(region), ":iam::", account_id, ":role/", role_name
    )
