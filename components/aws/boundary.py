"""Permissions boundary: the most any role of the stack may ever be granted.

A customer-managed IAM policy `<prefix>-boundary` that every role the stack declares carries as
its permissions boundary, and that the CI deploy role must attach to every role it creates or
changes (condition `iam:PermissionsBoundary`). Whatever an inline policy says, a bounded role
gets no more than the services the stack's duties use, may pass only the stack's own roles,
and can neither change the boundary nor remove one. The CI deploy role may not change this
policy either: a change to it is applied by an administrator (README, "Security changes").
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import child, partition, policy

# Services the duty roles (components/aws/identities.py) call; IAM is not among them.
BOUNDED_SERVICES = (
    "s3",
    "kms",
    "ecr",
    "sagemaker",
    "sagemaker-mlflow",
    "events",
    "scheduler",
    "sqs",
    "sns",
    "logs",
    "cloudwatch",
    "ec2",
)
BOUNDARY_REWRITES = (
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
)


def boundary_name(prefix: str) -> str:
    return f"{prefix}-boundary"


@dataclass(frozen=True)
class PermissionsBoundaryArgs:
    prefix: str
    """`<client>-<env>`: the policy is `<prefix>-boundary`; roles it lets pass are `<prefix>-*`."""
    account_id: pulumi.Input[str]
    """Account of the stack."""
    region: str
    """Region of the stack; bounded roles act only there (S3 and IAM names are global)."""


class PermissionsBoundary(pulumi.ComponentResource):
    """The stack's permissions boundary policy."""

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: PermissionsBoundaryArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlops:aws:PermissionsBoundary", name, None, opts)
        p = partition(args.region)
        own = pulumi.Output.concat("arn:", p, ":iam::", args.account_id, ":policy/")
        boundary_arn = pulumi.Output.concat(own, boundary_name(args.prefix))
        doc = policy(
            [
                {
                    "Sid": "StackServicesOnly",
                    "Effect": "Allow",
                    "Action": [f"{s}:*" for s in BOUNDED_SERVICES],
                    "Resource": "*",
                },
                {
                    "Sid": "PassOnlyStackRoles",
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": pulumi.Output.concat(
                        "arn:", p, ":iam::", args.account_id, ":role/", args.prefix, "-*"
                    ),
                },
                {
                    "Sid": "BoundaryIsFixed",
                    "Effect": "Deny",
                    "Action": list(BOUNDARY_REWRITES),
                    "Resource": boundary_arn,
                },
                {
                    "Sid": "NoBoundaryRemoval",
                    "Effect": "Deny",
                    "Action": "iam:DeleteRolePermissionsBoundary",
                    "Resource": "*",
                },
            ]
        )
        boundary = aws.iam.Policy(
            f"{name}-policy",
            name=boundary_name(args.prefix),
            description=f"{args.prefix}: the most any role of the stack may be granted",
            policy=doc,
            opts=child(self),
        )
        self.arn = boundary.arn
        self.register_outputs({"arn": self.arn})
