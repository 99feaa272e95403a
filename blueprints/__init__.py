"""The blueprint catalog. A blueprint composes components into the stack contract for one
platform; this module finds them by name."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

import pulumi

from mlops.config import StackSettings
from mlops.contract import ENDPOINT_CAPABILITIES, Capability

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

    # Optional: `disabled_capabilities(settings) -> dict[Capability, str]` names the
    # capabilities this stack's config turns off on this platform, each with the reason.


def get(name: str) -> ModuleType:
    if name not in NAMES:
        raise KeyError(f"unknown blueprint {name!r}; use one of {', '.join(NAMES)}")
    return importlib.import_module(f"blueprints.{name}")


def build(settings: StackSettings) -> dict[str, pulumi.Input[str]]:
    module = get(settings.blueprint)
    if not module.IMPLEMENTED:
        raise BlueprintNotImplemented(
            f"blueprint {settings.blueprint!r} is not implemented yet (issue #{module.ISSUE}); "
            f"nothing was created. Use one of: " + ", ".join(n for n in NAMES if get(n).IMPLEMENTED)
        )
    return module.build(settings)


def switched_off(settings: StackSettings) -> dict[Capability, str]:
    """Capabilities the stack's own config turns off, each with the reason (the key to change).
    A prod stack turns nothing off; the plan reports these instead of calling them missing."""
    off: dict[Capability, str] = {}
    if settings.model is None:
        off.update({c: "no model pinned (mlops:model is unset)" for c in ENDPOINT_CAPABILITIES})
    module = get(settings.blueprint)
    hook = getattr(module, "disabled_capabilities", None)
    if hook is not None:
        off.update(hook(settings))
    return off
