"""The onprem blueprint: the stack contract on Kubernetes (on-premises). Not implemented yet (issue #5)."""

from __future__ import annotations

import pulumi

from blueprints import BlueprintNotImplemented, Evidence
from mlops.config import StackSettings
from mlops.contract import Capability

NAME = "onprem"
PLATFORM = "kubernetes"
TITLE = "Kubernetes (on-premises)"
IMPLEMENTED = False
ISSUE = 5
CAPABILITIES: dict[Capability, str] = {}
EVIDENCE: tuple[Evidence, ...] = ()


def build(settings: StackSettings) -> dict[str, pulumi.Input[str]]:
    raise BlueprintNotImplemented(f"blueprint {NAME!r} is not implemented yet (issue #{ISSUE})")
