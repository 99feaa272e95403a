"""The offline plan: run the Pulumi program under recording mocks with one stack's config.

No cloud call is made and no state is read: this shows what the program would declare, not a
diff against what is deployed (that is `pulumi preview`). The plan records every resource
(type, name, parent, inputs, protect / retainOnDelete), the stack outputs, how many resources
give each capability of the contract, and the controls result.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

import blueprints
from core import controls as controls_mod
from core.config import (
    NAMESPACE,
    PROJECT_ROOT,
    StackSettings,
    apply_project_defaults,
    existing_stack_file,
    read_stack_file,
    validate_settings,
)
from core.contract import Capability
from core.controls import Record
from mlops import program
from mlops.alias_urns import skipping_unused_alias_urns
from mlops.mocks import MOCK_SUBSCRIPTION, MOCK_TENANT
from mlops.mocks import aws as aws_mocks
from mlops.mocks import azure as azure_mocks
from mlops.mocks import kubernetes as kubernetes_mocks

PROJECT = "mlops"
OFFLINE_NOTE = (
    "offline plan: the program ran under recording mocks with no cloud call; it shows what "
    "the stack declares, not a diff against deployed state (use `pulumi preview` for that)"
)
MOCK_ACCOUNT = "123456789012"


@dataclass
class Plan:
    stack: str
    settings: StackSettings
    records: list[Record]
    outputs: dict[str, Any]
    capabilities: dict[str, int]
    findings: list[controls_mod.Finding]
    aliases: dict[str, list[bytes]] = field(default_factory=dict)
    """The alias specs each resource sent the engine, serialized, by URN."""

    @property
    def platform(self) -> str:
        return controls_mod.PLATFORM_OF_BLUEPRINT[self.settings.blueprint]

    @property
    def failed_controls(self) -> list[controls_mod.Finding]:
        return [f for f in self.findings if f.status == "fail"]

    @property
    def capabilities_off(self) -> dict[str, str]:
        """Capabilities this stack's config turns off, with the reason."""
        return {c.value: why for c, why in blueprints.switched_off(self.settings).items()}

    @property
    def missing_capabilities(self) -> list[str]:
        off = self.capabilities_off
        return [c for c, n in self.capabilities.items() if n == 0 and c not in off]

    def by_type(self, type_: str) -> list[Record]:
        return [r for r in self.records if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Record:
        """The single recorded resource of a type (and name); fails loudly otherwise."""
        found = [r for r in self.by_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.by_type(type_)]
            raise LookupError(f"expected one {type_} named {name!r}, found {names}")
        return found[0]

    def children(self, parent_urn: str) -> list[Record]:
        return [r for r in self.records if r.parent == parent_urn]

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "offline": True,
            "note": OFFLINE_NOTE,
            "blueprint": self.settings.blueprint,
            "environment": self.settings.environment,
            "resourceCount": len(self.records),
            "resources": [r.as_dict() for r in self.records],
            "outputs": self.outputs,
            "capabilities": self.capabilities,
            "capabilitiesOff": self.capabilities_off,
            "missingCapabilities": self.missing_capabilities,
            "controls": [f.as_dict() for f in self.findings],
            "controlsFailed": len(self.failed_controls),
        }


def _service_of(type_: str) -> tuple[str, str]:
    pkg, _, rest = type_.partition(":")
    module, _, kind = rest.partition(":")
    return module.split("/")[0], kind


def _default_outputs(platform: str, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
    inputs = dict(args.inputs)
    name = args.name
    if platform == "aws":
        service, kind = _service_of(args.typ)
        physical = inputs.get("name") or inputs.get("bucket") or name
        arn = f"arn:aws:{service}:us-east-1:{MOCK_ACCOUNT}:{kind.lower()}/{physical}"
        return f"{physical}-id", {"arn": arn, "name": physical, **inputs}
    if platform == "azure":
        _, kind = _service_of(args.typ)
        physical = next(
            (
                v
                for k, v in inputs.items()
                if k.endswith("Name")
                and k.lower().startswith(kind.lower()[:4])
                and isinstance(v, str)
            ),
            name,
        )
        rid = (
            f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/mock-rg/providers/"
            f"{args.typ.replace(':', '/')}/{physical}"
        )
        return rid, {"name": physical, **inputs}
    if platform == "kubernetes":
        meta = dict(inputs.get("metadata") or {})
        meta.setdefault("name", name)
        return f"{meta.get('namespace', 'default')}/{meta['name']}", {**inputs, "metadata": meta}
    return f"{name}-id", inputs


def _default_call(platform: str, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:
    token = args.token
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {
            "accountId": MOCK_ACCOUNT,
            "arn": f"arn:aws:iam::{MOCK_ACCOUNT}:user/plan",
            "userId": "PLAN",
        }
    if token == "aws:index/getRegion:getRegion":
        return {"name": "us-east-1", "region": "us-east-1", "id": "us-east-1"}
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return {
            "names": ["us-east-1a", "us-east-1b", "us-east-1c"],
            "zoneIds": ["use1-az1", "use1-az2", "use1-az3"],
        }
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
    if token.startswith("azure-native:authorization:getClientConfig"):
        return {
            "clientId": MOCK_TENANT,
            "objectId": MOCK_TENANT,
            "subscriptionId": MOCK_SUBSCRIPTION,
            "tenantId": MOCK_TENANT,
        }
    return {}


# Each platform's refinements of the default answers: `outputs(args) -> (id, state) | None`
# and `call(args) -> dict | None` in `mlops/mocks/<platform>.py`.
MOCK_HOOKS = {"aws": aws_mocks, "azure": azure_mocks, "kubernetes": kubernetes_mocks}


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that answer like the platform would (ids, ARNs, names) and keep what they saw.
    Each platform refines the answers in `mlops/mocks/<platform>.py` (MOCK_HOOKS)."""

    def __init__(self, platform: str):
        self.platform = platform
        self.hooks = MOCK_HOOKS.get(platform)
        self.outputs: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict]:
        answer = None
        if self.hooks is not None and hasattr(self.hooks, "outputs"):
            answer = self.hooks.outputs(args)
        id_, state = answer or _default_outputs(self.platform, args)
        self.outputs[(args.typ, args.name)] = state
        return id_, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> dict[str, Any]:
        if self.hooks is not None and hasattr(self.hooks, "call"):
            answer = self.hooks.call(args)
            if answer is not None:
                return answer
        return _default_call(self.platform, args)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also keeping parent, custom and resource options of every
    registration (the Mocks interface does not see them)."""

    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        self.records: list[Record] = []
        self.aliases: dict[str, list[bytes]] = {}
        """The alias specs each registration sent, serialized, by URN."""
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        from pulumi.runtime import rpc

        inputs = _sync_await(_deserialize(rpc, request.object))
        record = Record(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=_plain(inputs),
            outputs={},
            options={
                "protect": bool(request.protect),
                "retainOnDelete": bool(request.retainOnDelete),
                "provider": request.provider,
                "dependsOn": list(request.dependencies),
                "ignoreChanges": list(request.ignoreChanges),
                "deleteBeforeReplace": bool(request.deleteBeforeReplace),
            },
        )
        with self._lock:
            self.records.append(record)
            self.aliases[response.urn] = [a.SerializeToString() for a in request.aliases]
        return response


async def _deserialize(rpc: Any, obj: Any) -> Any:
    return rpc.deserialize_properties(obj)


def _plain(value: Any) -> Any:
    """Recorded inputs as plain JSON-able data (secrets unwrapped to a marker)."""
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == "1b47061264138c4ac30d75fd1eb44270":
            return "[secret]"
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _config_for_pulumi(values: dict[str, Any]) -> dict[str, str]:
    """Stack-file values as the engine hands them to a program: strings, objects as JSON."""
    out: dict[str, str] = {}
    for key, value in values.items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        if isinstance(value, str):
            out[full] = value
        elif isinstance(value, bool):
            out[full] = "true" if value else "false"
        else:
            out[full] = json.dumps(value)
    return out


def _resolve(value: Any) -> Any:
    async def go() -> Any:
        return await pulumi.Output.from_input(value).future(with_unknowns=False)

    return _sync_await(go())


def _count_capabilities(settings: StackSettings, records: list[Record]) -> dict[str, int]:
    module = blueprints.get(settings.blueprint)
    counts: Counter[str] = Counter({c.value: 0 for c in Capability})
    for evidence in module.EVIDENCE:
        for r in records:
            if r.type != evidence.type_:
                continue
            if evidence.property_path is not None:
                present = controls_mod.CHECKS["present"]
                if not any(
                    present(v, None, records)
                    for v in controls_mod.values_at(r.inputs, evidence.property_path)
                ):
                    continue
            counts[evidence.capability.value] += 1
    return dict(counts)


def run_plan(
    stack: str,
    *,
    root: Path = PROJECT_ROOT,
    overrides: dict[str, Any] | None = None,
) -> Plan:
    """Validate the stack's config, then run the program under recording mocks.
    `overrides` replace stack-file keys (e.g. `{"model": "2"}`), for tests and `--set`; a
    dotted key (`ci.environment`) sets one value inside its object and keeps the rest."""
    values, secret_keys = read_stack_file(existing_stack_file(stack, root))
    for key, value in (overrides or {}).items():
        top, *inner = key.split(".") if ":" not in key else [key]
        name = top if ":" in top else f"{NAMESPACE}:{top}"
        if not inner:
            values[name] = value
            continue
        current = values.get(name)
        node = values[name] = copy.deepcopy(current) if isinstance(current, dict) else {}
        for part in inner[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[inner[-1]] = value
    values = apply_project_defaults(values, root)
    settings = validate_settings(values, secret_keys, stack=stack)  # errors before resources
    platform = controls_mod.PLATFORM_OF_BLUEPRINT[settings.blueprint]

    kubernetes_mocks.use_root(root, settings)  # a client's StackReference reads it there
    mocks = RecordingMocks(platform)
    monitor = RecordingMonitor(mocks)
    pulumi_settings.reset_options(project=PROJECT, stack=stack, preview=False)
    set_all_config(_config_for_pulumi(values), sorted(secret_keys))
    pulumi_mocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

    exported: dict[str, Any] = {}

    def body() -> None:
        exported.update(program.run(settings))

    with skipping_unused_alias_urns():
        _sync_await(run_pulumi_func(body))
    outputs = {k: _plain(_resolve(v)) for k, v in exported.items()}
    for record in monitor.records:
        record.outputs = mocks.outputs.get((record.type, record.name), {})
    findings = controls_mod.evaluate(
        monitor.records,
        platform=platform,
        environment=settings.environment,
        suppressions={s.control: s.justification for s in settings.suppressions},
    )
    return Plan(
        stack=stack,
        settings=settings,
        records=monitor.records,
        outputs=outputs,
        capabilities=_count_capabilities(settings, monitor.records),
        findings=findings,
        aliases=monitor.aliases,
    )


def plan_diff(stack: str, root: Path, overrides: Mapping[str, Any]) -> tuple[list, list, list]:
    """Resources the offline plan adds, removes and changes under `overrides`."""
    before = {r.urn: r.inputs for r in run_plan(stack, root=root).records}
    after = {r.urn: r.inputs for r in run_plan(stack, root=root, overrides=dict(overrides)).records}
    short = lambda urn: urn.rsplit("::", 1)[-1]  # noqa: E731
    return (
        sorted(short(u) for u in after.keys() - before.keys()),
        sorted(short(u) for u in before.keys() - after.keys()),
        sorted(short(u) for u in after.keys() & before.keys() if after[u] != before[u]),
    )
