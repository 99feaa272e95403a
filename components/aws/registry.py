"""Container registry: the ECR repository for the pipeline and serving images.

Tags are immutable (a tag names one image forever, so a model package and a pipeline run
can be traced to the exact image), images are scanned on push and encrypted with the stack
key, and a lifecycle policy removes untagged layers and old images."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.common import bad, child, stateful
from core.config import STORE_DEFAULTS
from core.errors import raise_problems


@dataclass(frozen=True)
class ContainerRegistryArgs:
    repository_name: str
    """Name of the ECR repository."""
    kms_key_arn: pulumi.Input[str]
    """Stack key that encrypts the images."""
    keep_images: int = 30
    """Tagged images kept; older ones expire."""
    untagged_days: int = 7
    """Days an untagged image (an interrupted or superseded push) is kept."""
    protect: bool = STORE_DEFAULTS.protect
    """Protect the repository and retain it on delete."""


def validate_container_registry_args(args: ContainerRegistryArgs) -> None:
    problems = []
    if not 1 <= args.keep_images <= 1000:
        problems.append(
            bad(
                "keep_images",
                args.keep_images,
                "between 1 and 1000",
                "keep at least the image the endpoint serves",
            )
        )
    if not 1 <= args.untagged_days <= 365:
        problems.append(
            bad("untagged_days", args.untagged_days, "between 1 and 365", "pass a number of days")
        )
    raise_problems("ContainerRegistry", problems)


class ContainerRegistry(pulumi.ComponentResource):
    """ECR repository: immutable tags, scan on push, KMS, lifecycle policy."""

    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: ContainerRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate_container_registry_args(args)
        super().__init__("mlops:aws:ContainerRegistry", name, None, opts)
        repo = aws.ecr.Repository(
            f"{name}-repository",
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
            force_delete=False,
            opts=stateful(self, args.protect),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repo.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"expire untagged images after {args.untagged_days}d",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": args.untagged_days,
                            },
                            "action": {"type": "expire"},
                        },
                        {
                            "rulePriority": 2,
                            "description": f"keep the newest {args.keep_images} tagged images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": args.keep_images,
                            },
                            "action": {"type": "expire"},
                        },
                    ]
                }
            ),
            opts=child(self),
        )
        self.repository_url = repo.repository_url
        self.repository_arn = repo.arn
        self.register_outputs({"repositoryUrl": self.repository_url})
