"""The stack's AWS provider: its region and the tags every resource carries."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from components.aws.budget import STACK_TAG


def stack_provider(prefix: str, region: str, tags: Mapping[str, str]) -> aws.Provider:
    """An explicit provider for `region` that tags every resource with `tags` and
    `mlops:stack=<prefix>` (the budget filters on that tag)."""
    return aws.Provider(
        f"{prefix}-aws",
        region=region,
        default_tags={"tags": {**tags, STACK_TAG: prefix}},
    )


def provider_opts(provider: aws.Provider) -> pulumi.ResourceOptions:
    """Options that make a component's children use `provider`."""
    return pulumi.ResourceOptions(providers={"aws": provider})
