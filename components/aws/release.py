"""Release trigger: approving a model version starts the CI release workflow.

An EventBridge rule matches "SageMaker Model Package State Change" events of this stack's
model package group whose `ModelApprovalStatus` is `Approved`, and delivers them through an
API destination to GitHub (`repository_dispatch`) or Azure DevOps (an incoming-webhook
service connection named after the event type). The CI token lives only in the EventBridge
connection, which keeps it in AWS Secrets Manager encrypted with the stack key. Delivery is
retried and undeliverable events land in an encrypted dead-letter queue. With no CI provider
the approval is announced on the alerts topic instead."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child, rule_dead_letters
from core.errors import raise_problems

PROVIDERS = ("none", "github", "azuredevops")


@dataclass(frozen=True)
class ReleaseTriggerArgs:
    stack: str
    """Stack name sent in the payload (`<client>-<env>`)."""
    rule_name: str
    """Name of the EventBridge rule."""
    model_package_group: str
    """Model package group whose approvals start a release."""
    dlq_name: str
    """Name of the dead-letter queue."""
    kms_key_arn: pulumi.Input[str]
    """Stack key for the connection's secret and the dead-letter queue."""
    provider: str = "none"
    """CI system: none (announce on `fallback_topic_arn`), github or azuredevops."""
    repository: str | None = None
    """`owner/repo` (GitHub) or `organization/project` (Azure DevOps)."""
    event_type: str = "mlops-release"
    """GitHub `repository_dispatch` event type / Azure DevOps incoming webhook name."""
    token: pulumi.Input[str] | None = None
    """CI token (a secret Output); required unless provider is none."""
    destination_name: str = "release"
    """Name of the API destination and its connection."""
    role_arn: pulumi.Input[str] | None = None
    """Role EventBridge assumes to call the API destination; required unless provider is none."""
    fallback_topic_arn: pulumi.Input[str] | None = None
    """SNS topic announcing approvals when provider is none."""
    max_retries: int = 10
    """Delivery attempts before an event goes to the dead-letter queue."""
    max_event_age_seconds: int = 24 * 3600
    """How long EventBridge keeps retrying an event."""


def validate_release_trigger_args(args: ReleaseTriggerArgs) -> None:
    problems = []
    if args.provider not in PROVIDERS:
        problems.append(
            bad(
                "provider",
                args.provider,
                "one of " + ", ".join(PROVIDERS),
                "set release.provider in Pulumi.<stack>.yaml",
            )
        )
    if args.provider in ("github", "azuredevops"):
        if not args.repository or not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repository):
            problems.append(
                bad(
                    "repository",
                    args.repository,
                    "`owner/repo`",
                    "set release.repository in Pulumi.<stack>.yaml",
                )
            )
        if args.token is None:
            problems.append(
                bad(
                    "token",
                    None,
                    "set",
                    "run `pulumi config set --secret mlops:releaseToken <token>`",
                )
            )
        if args.role_arn is None:
            problems.append(
                bad("role_arn", None, "set", "pass the release role (Identities.release_role_arn)")
            )
    elif args.provider == "none" and args.fallback_topic_arn is None:
        problems.append(
            bad(
                "fallback_topic_arn",
                None,
                "set when provider is none",
                "pass the alerts topic so approvals are announced",
            )
        )
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", args.event_type):
        problems.append(
            bad(
                "event_type",
                args.event_type,
                "1-100 letters, digits, . _ -",
                "set release.eventType",
            )
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
    if not 60 <= args.max_event_age_seconds <= 86400:
        problems.append(
            bad(
                "max_event_age_seconds",
                args.max_event_age_seconds,
                "between 60 and 86400",
                "pass what EventBridge accepts",
            )
        )
    raise_problems("ReleaseTrigger", problems)


def approval_pattern(model_package_group: str) -> dict[str, Any]:
    """EventBridge pattern: a version of `model_package_group` became Approved."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": [model_package_group],
            "ModelApprovalStatus": ["Approved"],
        },
    }


def dispatch_endpoint(provider: str, repository: str, event_type: str) -> str:
    """The URL the API destination POSTs to."""
    owner, name = repository.split("/", 1)
    if provider == "github":
        return f"https://api.github.com/repos/{owner}/{name}/dispatches"
    return (
        f"https://dev.azure.com/{owner}/_apis/public/distributedtask/webhooks/"
        f"{event_type}?api-version=6.0-preview"
    )


def dispatch_template(stack: str, event_type: str) -> str:
    """Input template turning the approval event into the CI request body.

    GitHub requires `event_type`; Azure DevOps passes the whole body to the pipeline."""
    return (
        '{"event_type": ' + json.dumps(event_type) + ', "client_payload": {'
        '"stack": ' + json.dumps(stack) + ", "
        '"model_package_group": <group>, "model_version": <version>, '
        '"model_package_arn": <arn>, "approval_status": <status>}}'
    )


INPUT_PATHS = {
    "group": "$.detail.ModelPackageGroupName",
    "version": "$.detail.ModelPackageVersion",
    "arn": "$.detail.ModelPackageArn",
    "status": "$.detail.ModelApprovalStatus",
}


class ReleaseTrigger(pulumi.ComponentResource):
    """EventBridge rule on model approval -> CI release workflow (with DLQ and retries)."""

    rule_name: pulumi.Output[str]
    secret_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ReleaseTriggerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_release_trigger_args(args)
        super().__init__("mlops:aws:ReleaseTrigger", name, None, opts)
        dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=args.dlq_name,
            kms_master_key_id=args.kms_key_arn,
            message_retention_seconds=14 * 24 * 3600,
            opts=child(self),
        )
        rule = aws.cloudwatch.EventRule(
            f"{name}-rule",
            name=args.rule_name,
            description=f"{args.model_package_group}: a model version was approved",
            event_pattern=json.dumps(approval_pattern(args.model_package_group)),
            opts=child(self),
        )
        delivery: dict[str, Any] = {
            "retry_policy": {
                "maximum_retry_attempts": args.max_retries,
                "maximum_event_age_in_seconds": args.max_event_age_seconds,
            },
            "dead_letter_config": {"arn": dlq.arn},
            "input_transformer": {
                "input_paths": INPUT_PATHS,
                "input_template": dispatch_template(args.stack, args.event_type),
            },
        }
        self.secret_arn = None
        if args.provider == "none":
            aws.cloudwatch.EventTarget(
                f"{name}-announce",
                rule=rule.name,
                arn=args.fallback_topic_arn,
                **delivery,
                opts=child(self),
            )
        else:
            assert args.repository is not None and args.token is not None
            token = pulumi.Output.secret(args.token)
            auth: dict[str, Any]
            if args.provider == "github":
                kind = "API_KEY"
                auth = {
                    "api_key": {
                        "key": "Authorization",
                        "value": pulumi.Output.concat("Bearer ", token),
                    },
                    "invocation_http_parameters": {
                        "header_parameters": [
                            {
                                "key": "Accept",
                                "value": "application/vnd.github+json",
                                "is_value_secret": False,
                            },
                        ]
                    },
                }
            else:
                kind = "BASIC"
                auth = {"basic": {"username": "mlops", "password": token}}
            connection = aws.cloudwatch.EventConnection(
                f"{name}-connection",
                name=args.destination_name,
                description=f"{args.provider} release workflow of {args.repository}",
                authorization_type=kind,
                auth_parameters=auth,
                kms_key_identifier=args.kms_key_arn,
                opts=child(self),
            )
            destination = aws.cloudwatch.EventApiDestination(
                f"{name}-destination",
                name=args.destination_name,
                connection_arn=connection.arn,
                http_method="POST",
                invocation_endpoint=dispatch_endpoint(
                    args.provider, args.repository, args.event_type
                ),
                invocation_rate_limit_per_second=1,
                opts=child(self),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-dispatch",
                rule=rule.name,
                arn=destination.arn,
                role_arn=args.role_arn,
                **delivery,
                opts=child(self),
            )
            self.secret_arn = connection.secret_arn
        rule_dead_letters(
            name,
            self,
            queue_url=dlq.url,
            queue_arn=dlq.arn,
            rule_arn=rule.arn,
            sid="ReleaseRuleDeadLetters",
        )
        self.rule_name = rule.name
        self.register_outputs({"ruleName": self.rule_name})
