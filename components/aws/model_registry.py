"""Model registry: the SageMaker model package group the pipeline registers every accepted
model version into, with its approval status. When a promotion target account is set, a
resource policy lets that account read the group and its versions (and nothing more)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import arn, bad, child, partition, policy, stateful
from core.config import STORE_DEFAULTS
from core.errors import raise_problems


@dataclass(frozen=True)
class ModelRegistryArgs:
    group_name: str
    """Name of the model package group."""
    region: str
    """Region of the group."""
    account_id: pulumi.Input[str]
    """Account that owns the group."""
    reader_account: str | None = None
    """AWS account (the promotion target) allowed to read the group; None: no one else."""
    protect: bool = STORE_DEFAULTS.protect
    """Protect the group (the record of every version and its approval) and retain it."""


def validate_model_registry_args(args: ModelRegistryArgs) -> None:
    problems = []
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", args.group_name):
        problems.append(
            bad(
                "group_name",
                args.group_name,
                "1-63 letters, digits and hyphens",
                "use a shorter client name",
            )
        )
    if args.reader_account is not None and not re.fullmatch(r"\d{12}", args.reader_account):
        problems.append(
            bad(
                "reader_account",
                args.reader_account,
                "a 12-digit AWS account id",
                "set promotion.targetAccount to the target's AWS account id",
            )
        )
    raise_problems("ModelRegistry", problems)


class ModelRegistry(pulumi.ComponentResource):
    """SageMaker model package group (plus a cross-account read policy when promoting)."""

    group_name: pulumi.Output[str]
    group_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_model_registry_args(args)
        super().__init__("mlops:aws:ModelRegistry", name, None, opts)
        group = aws.sagemaker.ModelPackageGroup(
            f"{name}-group",
            model_package_group_name=args.group_name,
            model_package_group_description="Model versions trained by the stack's pipeline",
            opts=stateful(self, args.protect),
        )
        if args.reader_account:
            reader = f"arn:{partition(args.region)}:iam::{args.reader_account}:root"
            aws.sagemaker.ModelPackageGroupPolicy(
                f"{name}-promotion-read",
                model_package_group_name=group.model_package_group_name,
                resource_policy=policy(
                    [
                        {
                            "Sid": "PromotionTargetReadsGroup",
                            "Effect": "Allow",
                            "Principal": {"AWS": reader},
                            "Action": ["sagemaker:DescribeModelPackageGroup"],
                            "Resource": arn(
                                "sagemaker",
                                args.region,
                                args.account_id,
                                f"model-package-group/{args.group_name}",
                            ),
                        },
                        {
                            "Sid": "PromotionTargetReadsVersions",
                            "Effect": "Allow",
                            "Principal": {"AWS": reader},
                            "Action": [
                                "sagemaker:DescribeModelPackage",
                                "sagemaker:ListModelPackages",
                            ],
                            "Resource": arn(
                                "sagemaker",
                                args.region,
                                args.account_id,
                                f"model-package/{args.group_name}/*",
                            ),
                        },
                    ]
                ),
                opts=child(self),
            )
        self.group_name = group.model_package_group_name
        self.group_arn = group.arn
        self.register_outputs({"groupName": self.group_name})
