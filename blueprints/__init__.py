"""The blueprint catalog. A blueprint composes components into the stack contract for one
platform; this module finds them by name."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import pulumi

from mlops.config import StackSettings
from mlops.contract import Capability

NAMES = ("sagemaker", "azureml", "onprem")


class BlueprintNotImplemented(NotImplementedError):
    """The blueprint's platform work has not landed yet; no resource was created."""


@dataclass(frozen=True)
class Evidence:
    """A recorded resource of `type_` shows the blueprint provides `capability`; when
    `property_path` is set, only if that input is present (and truthy)."""

    capability: Capability
    type_: str
    property_path: str | None = None


class BlueprintModule(Protocol):
    NAME: str
    PLATFORM: str
    TITLE: str
    IMPLEMENTED: bool
    ISSUE: int
    CAPABILITIES: dict[Capability, str]
    EVIDENCE: tuple[Evidence, ...]

    def build(self, settings: StackSettings) -> dict[str, pulumi.Input[str]]: ...


def get(name: str) -> ModuleType:
    if name not in NAMES:
        raise KeyError(f"unknown blueprint {name!r}; use one of {', '.join(NAMES)}")
    return importlib.import_module(f"blueprints.{name}")


def build(settings: StackSettings) -> dict[str, pulumi.Input[str]]:
    module = get(settings.blueprint)
    if not module.IMPLEMENTED:
        raise BlueprintNotImplemented(
            f"blueprint {settings.blueprint!r} is not implemented yet (issue #{module.ISSUE}); "
            f"nothing was created. Use one of: "
            + ", ".join(n for n in NAMES if get(n).IMPLEMENTED)
        )
    return module.build(settings)
