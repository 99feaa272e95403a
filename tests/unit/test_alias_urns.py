"""The program skips the SDK's eager alias URNs (mlops/alias_urns.py) without changing what
the engine receives: the same resources, inputs, options and alias specs."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.resource as sdk_resource
import pytest
from pulumi.runtime import settings as sdk_settings

from mlops import alias_urns
from mlops.plan import run_plan
from tests.conftest import get_plan


def _comparable(value: Any) -> Any:
    """Assets compare by identity; the SDK gathers dependency URNs in no fixed order."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    if isinstance(value, pulumi.asset.AssetArchive):
        return {"archive": _comparable(value.assets)}
    if isinstance(value, pulumi.asset.StringAsset | pulumi.asset.FileAsset):
        return {"asset": getattr(value, "text", None) or getattr(value, "path", None)}
    return value


def _sent(plan: Any) -> dict[str, Any]:
    return {
        r.urn: _comparable(
            (r.type, r.parent, r.inputs, {**r.options, "dependsOn": sorted(r.options["dependsOn"])})
        )
        for r in plan.records
    }


@pytest.mark.parametrize("stack", ["contoso-dev", "acme-dev", "globex-dev"])
def test_the_engine_receives_the_same_registrations_and_alias_specs(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = get_plan(stack)
    calls: list[str] = []
    original = sdk_resource.collapse_alias_to_urn

    def counted(alias: Any, name: str, type_: str, parent: Any) -> Any:
        calls.append(type_)
        return original(alias, name, type_, parent)

    monkeypatch.setattr(alias_urns, "applies", lambda: False)
    monkeypatch.setattr(sdk_resource, "collapse_alias_to_urn", counted)
    slow = run_plan(stack)

    assert _sent(fast) == _sent(slow)
    assert fast.aliases == slow.aliases
    # the SDK's own path did build the URNs the fast path skips
    with_aliases = [urn for urn, specs in slow.aliases.items() if specs]
    assert len(calls) == sum(len(slow.aliases[urn]) for urn in with_aliases)
    if stack.startswith("contoso"):
        # azure-native sends one alias per API version of each resource
        assert len(with_aliases) > 50 and len(calls) > 500


def test_a_plan_skips_the_unused_urns_and_restores_the_sdk(monkeypatch: pytest.MonkeyPatch):
    calls: list[str] = []
    original = sdk_resource.collapse_alias_to_urn
    monkeypatch.setattr(
        sdk_resource, "collapse_alias_to_urn", lambda *a: calls.append(a[2]) or original(*a)
    )
    patched = sdk_resource.collapse_alias_to_urn
    plan = run_plan("contoso-dev")
    assert any(plan.aliases.values())  # specs still reach the engine
    assert calls == []
    assert sdk_resource.collapse_alias_to_urn is patched  # put back after the plan


def test_applies_on_the_pinned_sdk_only_with_alias_specs(monkeypatch: pytest.MonkeyPatch):
    # an SDK upgrade that stops building Resource._aliases this way turns the shim off; this
    # test then fails so that docs/performance.md and the module's docstring are revisited
    assert "collapse_alias_to_urn" in sdk_resource.Resource.__init__.__code__.co_names
    monkeypatch.setattr(sdk_settings.SETTINGS, "monitor_features", {alias_urns.ALIAS_SPECS})
    assert alias_urns.applies()
    monkeypatch.setattr(sdk_settings.SETTINGS, "monitor_features", set())
    assert not alias_urns.applies()
    original = sdk_resource.collapse_alias_to_urn
    with alias_urns.skipping_unused_alias_urns() as active:
        assert not active
        assert sdk_resource.collapse_alias_to_urn is original
