"""The azureml blueprint: the stack contract on Azure Machine Learning. Not implemented yet (issue #4)."""

from __future__ import annotations

import pulumi

from blueprints import BlueprintNotImplemented, Evidence
from mlops.config import StackSettings
from mlops.contract import Capability

NAME = "azureml"
PLATFORM = "azure"
TITLE = "Azure Machine Learning"
IMPLEMENTED = False
ISSUE = 4
CAPABILITIES: dict[Capability, str] = {}
EVIDENCE: tuple[Evidence, ...] = ()


def build(settings: StackSettings) -> dict[str, pulumi.Input[str]]:
    raise BlueprintNotImplemented(f"blueprint {NAME!r} is not implemented yet (issue #{ISSUE})")
