"""Skip the Python SDK's eager alias URNs when the engine takes alias specs.

Every `pulumi.Resource` computes a URN for each of its aliases when it is constructed
(`Resource._aliases`, through `collapse_alias_to_urn`: about ten Outputs and asyncio tasks per
alias). The SDK reads that list in one place only, `runtime.resource.all_aliases`, which runs
for engines that cannot take alias specs; an engine that can (every Pulumi CLI the kit
supports, and the SDK's mock monitor) receives the specs built from the resource options, which
this leaves untouched. pulumi-azure-native declares one alias per API version of each resource
(31 on a `ComponentVersion`, 60 on a `VirtualNetwork`), so on an Azure ML stack the unused URNs
were most of the time spent registering resources: contoso-prod registered its 129 resources in
8.4 s with them and 2.1 s without (docs/performance.md). The upstream problem is
pulumi/pulumi#10010; pulumi/pulumi#11064 moved the alias computation sent to the engine, not
this list.

`mlops.program.main` (what `pulumi preview` and `pulumi up` run) calls `install()`, and
`mlops plan` runs the same program inside `skipping_unused_alias_urns()`, so both take the same
path. It changes nothing when the
engine lacks alias specs, or when the SDK no longer builds the list this way (checked against
the constructor's code, so an SDK upgrade that changes it turns this into a no-op rather than
a wrong guess); tests/unit/test_alias_urns.py shows every example stack sends the engine the
same alias specs either way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pulumi.resource as sdk_resource
from pulumi.runtime import settings as sdk_settings
from pulumi.runtime.proto import resource_pb2

ALIAS_SPECS = resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS


def _unused(alias: Any, name: str, type_: str, parent: Any) -> Any:
    """Stands in for the URN nobody reads: the alias as given."""
    return alias


def applies() -> bool:
    """True when the engine takes alias specs and the SDK builds `_aliases` as this expects."""
    builds_list = "collapse_alias_to_urn" in sdk_resource.Resource.__init__.__code__.co_names
    return builds_list and sdk_settings.monitor_supports_feature(ALIAS_SPECS)


def install() -> bool:
    """Skip the unused alias URNs for the rest of the process (the Pulumi program's own
    process, whose resources may also be created in `apply` callbacks after `main` returns).
    Returns whether it applied."""
    if not applies() or sdk_resource.collapse_alias_to_urn is _unused:
        return False
    sdk_resource.collapse_alias_to_urn = _unused
    return True


@contextmanager
def skipping_unused_alias_urns() -> Iterator[bool]:
    """The same inside a block (a whole `mlops plan` run, event loop included), then restores
    the SDK's function. Yields whether it applied."""
    original = sdk_resource.collapse_alias_to_urn
    active = install()
    try:
        yield active
    finally:
        if active:
            sdk_resource.collapse_alias_to_urn = original
