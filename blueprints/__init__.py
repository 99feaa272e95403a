"""The blueprint catalog. A blueprint composes components into the stack contract for one
platform; this module finds them by name."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from core.config import StackSettings
from core.contract import ENDPOINT_CAPABILITIES, Capability

if TYPE_CHECKING:  # `mlops --help` and `mlops validate` do not load the Pulumi SDK
    import pulumi

NAMES = ("sagemaker", "azureml", "onprem", "cluster")


@dataclass(frozen=True)
class Evidence:
    """A recorded resource of `type_` shows the blueprint provides `capability`; when
    `property_path` is set, only if that input is present (and truthy)."""

    capability: Capability
    type_: str
    property_path: str | None = None


def get(name: str) -> ModuleType:
    if name not in NAMES:
        raise KeyError(f"unknown blueprint {name!r}; use one of {', '.join(NAMES)}")
    return importlib.import_module(f"blueprints.{name}")


def build(settings: StackSettings) -> dict[str, pulumi.Input[str]]:
    return get(settings.blueprint).build(settings)


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
