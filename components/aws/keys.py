"""Keys: the stack's customer-managed KMS key, rotated yearly, with a key policy that names
every principal (no unconditioned `*`)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child, partition, policy, stateful
from core.config import STORE_DEFAULTS
from core.errors import raise_problems

KEY_ADMIN_ACTIONS = (
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
    "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
    "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
)  # fmt: skip
KEY_USE_ACTIONS = (
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
    "kms:CreateGrant",
)  # fmt: skip
# Services that write encrypted data with this key on the stack's behalf.
SERVICE_PRINCIPALS = (
    "events.amazonaws.com",  # EventBridge delivering to the encrypted dead-letter queues
    "cloudwatch.amazonaws.com",  # alarms publishing to the encrypted alerts topic
    "budgets.amazonaws.com",  # budget alerts publishing to the encrypted alerts topic
)


@dataclass(frozen=True)
class StackKeyArgs:
    prefix: str
    """`<client>-<env>`; the key alias is `alias/<prefix>`."""
    account_id: pulumi.Input[str]
    """Account that owns the key; its IAM policies decide who else may use it."""
    region: str
    """Region of the key (decides the ARN partition)."""
    deletion_window_days: int = 30
    """Days a scheduled deletion waits (7-30), so a mistaken deletion can be cancelled."""
    protect: bool = STORE_DEFAULTS.protect
    """Protect the key and retain it on delete (data encrypted with it stays readable)."""
    service_principals: tuple[str, ...] = SERVICE_PRINCIPALS
    """AWS services that may use the key, each restricted to this account by condition."""


def validate_stack_key_args(args: StackKeyArgs) -> None:
    problems = []
    if not 7 <= args.deletion_window_days <= 30:
        problems.append(
            bad(
                "deletion_window_days",
                args.deletion_window_days,
                "between 7 and 30",
                "pick a window KMS accepts",
            )
        )
    for service in args.service_principals:
        if service == "*" or not service.endswith(".amazonaws.com"):
            problems.append(
                bad(
                    "service_principals",
                    service,
                    "an AWS service principal",
                    "name services such as events.amazonaws.com",
                )
            )
    raise_problems("StackKey", problems)


class StackKey(pulumi.ComponentResource):
    """A customer-managed KMS key (rotation on) and its alias."""

    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: StackKeyArgs, opts: pulumi.ResourceOptions | None = None):
        validate_stack_key_args(args)
        super().__init__("mlops:aws:StackKey", name, None, opts)
        root = pulumi.Output.concat(
            "arn:", partition(args.region), ":iam::", args.account_id, ":root"
        )
        account_only = {"StringEquals": {"aws:SourceAccount": args.account_id}}
        statements = [
            {
                "Sid": "AccountAdministersKey",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": list(KEY_ADMIN_ACTIONS + KEY_USE_ACTIONS),
                "Resource": "*",
            },
        ]
        if args.service_principals:
            statements.append(
                {
                    "Sid": "StackServicesOfThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": list(args.service_principals)},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                    "Resource": "*",
                    "Condition": account_only,
                }
            )
        # CloudWatch Logs encrypts the stack's log groups (the VPC flow logs) with the key; the
        # encryption context names the log group, so only `<prefix>-*` groups of this account.
        statements.append(
            {
                "Sid": "LogGroupsOfThisStack",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{args.region}.amazonaws.com"},
                "Action": [
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                ],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": pulumi.Output.concat(
                            "arn:",
                            partition(args.region),
                            ":logs:",
                            args.region,
                            ":",
                            args.account_id,
                            ":log-group:",
                            args.prefix,
                            "-*",
                        )
                    }
                },
            }
        )
        self._key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.prefix}: MLOps stack data, models, captures and secrets",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=args.deletion_window_days,
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            policy=policy(statements),
            opts=stateful(self, args.protect),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.prefix}",
            target_key_id=self._key.key_id,
            opts=child(self),
        )
        self.key_arn = self._key.arn
        self.key_id = self._key.key_id
        self.register_outputs({"keyArn": self.key_arn})
