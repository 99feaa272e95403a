"""Controls as data: one table of security and reliability controls, evaluated against the
resources an offline plan recorded.

Each row names a platform, a Pulumi resource type, a property path in that resource's inputs
(or `$opts.protect` / `$opts.retainOnDelete` for resource options), the check that enforces it
and the expected value. The rows live with their platform in `components/<platform>/controls.py`;
this module holds the checks, the evaluator, and the union of the rows. The same table drives
`mlops plan`, the test suite and `docs/controls.md`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PLATFORMS = ("aws", "azure", "kubernetes")
PLATFORM_OF_BLUEPRINT = {"sagemaker": "aws", "azureml": "azure", "onprem": "kubernetes"}
Status = Literal["pass", "fail", "n/a", "waived", "suppressed"]


@dataclass
class Record:
    """One resource the program registered."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "options": self.options,
            "inputs": self.inputs,
        }


@dataclass(frozen=True)
class Control:
    id: str
    """Stable id, `<PLATFORM>-<SERVICE>-<NN>`, e.g. AWS-S3-01."""
    platform: str
    """aws, azure or kubernetes."""
    resource_type: str
    """Pulumi type token of the resources it applies to (`*` for every resource)."""
    property_path: str
    """Dotted path into the resource inputs; `a[*].b` checks every element."""
    check: str
    """Name of the check in CHECKS."""
    expected: Any
    """What the check compares with."""
    title: str
    """One line a reader understands."""
    rationale: str
    """Why the control exists."""
    dev_exception: str | None = None
    """When set, a failure in the dev tier is waived for this documented reason."""
    when: tuple[str, Any] | None = None
    """Apply only to resources whose input at this path equals this value."""


@dataclass
class Finding:
    control: Control
    status: Status
    resources: list[str] = field(default_factory=list)
    """Names of the resources the control was evaluated on."""
    failures: list[str] = field(default_factory=list)
    """One line per failing resource: name, value found."""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.control.id,
            "title": self.control.title,
            "status": self.status,
            "resources": self.resources,
            "failures": self.failures,
            "note": self.note,
        }


_SEGMENT = re.compile(r"^(?P<key>[^\[\]]+)(?:\[(?P<index>\*|\d+)\])?$")
_QUOTED = re.compile(r'\["([^"]+)"\]')
MISSING: Any = object()


def _segments(path: str) -> list[str]:
    """Split a path on dots, keeping `["a.b/c"]` (a key with dots, e.g. a label) whole."""
    quoted: list[str] = []

    def hide(match: re.Match[str]) -> str:
        quoted.append(match[1])
        return f".\x00{len(quoted) - 1}"

    parts = [p for p in _QUOTED.sub(hide, path).split(".") if p]
    return [quoted[int(p[1:])] if p.startswith("\x00") else p for p in parts]


def values_at(obj: Any, path: str) -> list[Any]:
    """The values at a dotted path; `[*]` fans out over a list, `[n]` picks one element,
    `["key.with/dots"]` names a key that contains dots. A missing step yields MISSING."""
    nodes = [obj]
    for segment in _segments(path):
        if segment in _hidden_keys(path):
            key, index = segment, None
        else:
            match = _SEGMENT.match(segment)
            if not match:
                raise ValueError(f"bad property path segment {segment!r} in {path!r}")
            key, index = match["key"], match["index"]
        nxt: list[Any] = []
        for node in nodes:
            value = node.get(key, MISSING) if isinstance(node, Mapping) else MISSING
            if index is None or value is MISSING:
                nxt.append(value)
            elif not isinstance(value, list):
                nxt.append(MISSING)
            elif index == "*":
                nxt.extend(value if value else [MISSING])
            else:
                nxt.append(value[int(index)] if int(index) < len(value) else MISSING)
        nodes = nxt
    return nodes


def _hidden_keys(path: str) -> set[str]:
    return set(_QUOTED.findall(path))


def _policy_statements(doc: Any) -> list[Mapping[str, Any]]:
    if isinstance(doc, str):
        doc = json.loads(doc)
    statements = doc.get("Statement", []) if isinstance(doc, Mapping) else []
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def no_wildcard_grant(value: Any, expected: Any, records: Iterable[Record]) -> bool:
    """An IAM-style policy with no Allow of `*` actions on `*` resources, and no
    unconditioned `*` principal."""
    if value is MISSING or value is None:
        return True
    for st in _policy_statements(value):
        if st.get("Effect", "Allow") != "Allow":
            continue
        actions = _as_list(st.get("Action", []))
        resources = _as_list(st.get("Resource", []))
        if "*" in actions and "*" in resources:
            return False
        if any(a.endswith(":*") for a in actions if isinstance(a, str)) and "*" in resources:
            return False
        principal = st.get("Principal")
        wildcard_principal = principal == "*" or (
            isinstance(principal, Mapping) and "*" in _as_list(principal.get("AWS", []))
        )
        if wildcard_principal and not st.get("Condition"):
            return False
    return True


def _ref_exists(value: Any, expected: str, records: Iterable[Record]) -> bool:
    """Every value names (by the input at `path`) a resource of `type` in this stack.
    expected: `<type token>#<input path>`."""
    type_, _, path = expected.partition("#")
    names = {
        v for r in records if r.type == type_ for v in values_at(r.inputs, path) if v is not MISSING
    }
    return value is not MISSING and bool(value) and all(v in names for v in _as_list(value))


def _sums_to(value: Any, expected: float, records: Iterable[Record]) -> bool:
    if not isinstance(value, Mapping) or not value:
        return False
    return sum(float(v) for v in value.values()) == float(expected)


CHECKS: dict[str, Callable[[Any, Any, Iterable[Record]], bool]] = {
    "equals": lambda v, e, _: v == e,
    "not_equals": lambda v, e, _: v is not MISSING and v != e,
    "one_of": lambda v, e, _: v in e,
    "at_least": lambda v, e, _: isinstance(v, int | float) and v >= e,
    "at_most": lambda v, e, _: isinstance(v, int | float) and v <= e,
    "present": lambda v, e, _: v is not MISSING and v not in (None, "", [], {}),
    "absent": lambda v, e, _: v is MISSING or v in (None, "", [], {}, False),
    "matches": lambda v, e, _: isinstance(v, str) and re.search(e, v) is not None,
    "contains": lambda v, e, _: isinstance(v, list | str | Mapping) and e in v,
    "no_wildcard_grant": no_wildcard_grant,
    "ref_exists": _ref_exists,
    "sums_to": _sums_to,
}

CHECK_DESCRIPTIONS: dict[str, str] = {
    "equals": "is `{e}`",
    "not_equals": "is set and not `{e}`",
    "one_of": "is one of `{e}`",
    "at_least": ">= `{e}`",
    "at_most": "<= `{e}`",
    "present": "is set",
    "absent": "is not set",
    "matches": "matches `{e}`",
    "contains": "contains `{e}`",
    "no_wildcard_grant": "grants no `*` action on `*` and no unconditioned `*` principal",
    "ref_exists": "names a resource in this stack (`{e}`)",
    "sums_to": "values sum to `{e}`",
}


def describe(control: Control) -> str:
    return CHECK_DESCRIPTIONS[control.check].format(e=control.expected)


def validate_table(rows: Iterable[Control]) -> list[str]:
    """Problems with the table itself: duplicate ids, unknown checks, bad platforms."""
    problems: list[str] = []
    seen: set[str] = set()
    for c in rows:
        if c.id in seen:
            problems.append(f"{c.id}: duplicate id")
        seen.add(c.id)
        if c.check not in CHECKS:
            problems.append(f"{c.id}: unknown check {c.check!r}")
        if c.platform not in PLATFORMS:
            problems.append(f"{c.id}: unknown platform {c.platform!r}")
        if not re.match(r"^[A-Z0-9]+(-[A-Z0-9]+)+$", c.id):
            problems.append(f"{c.id}: id is not of the form AWS-S3-01")
    return problems
