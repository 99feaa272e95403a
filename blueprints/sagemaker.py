"""The sagemaker blueprint: the stack contract on AWS SageMaker. Not implemented yet (issue #3)."""

from __future__ import annotations

import pulumi

from blueprints import BlueprintNotImplemented, Evidence
from mlops.config import StackSettings
from mlops.contract import Capability

NAME = "sagemaker"
PLATFORM = "aws"
TITLE = "AWS SageMaker"
IMPLEMENTED = False
ISSUE = 3
CAPABILITIES: dict[Capability, str] = {}
EVIDENCE: tuple[Evidence, ...] = ()


def build(settings: StackSettings) -> dict[str, pulumi.Input[str]]:
    raise BlueprintNotImplemented(f"blueprint {NAME!r} is not implemented yet (issue #{ISSUE})")
