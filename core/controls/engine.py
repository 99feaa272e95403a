"""Controls as data: one table of security and reliability controls, evaluated against the
resources an offline plan recorded.

Each row names a platform, a Pulumi resource type, a property path in that resource's inputs
(or `$opts.protect` / `$opts.retainOnDelete` for resource options), the check that enforces it
and the expected value. The rows live with their platform in `components/<platform>/controls.py`;
this module holds the checks, the evaluator, and the union of the rows. The same table drives
`mlops plan`, the test suite and `docs/controls.md`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

PLATFORMS = ("aws", "azure", "kubernetes")
PLATFORM_OF_BLUEPRINT = {
    "sagemaker": "aws",
    "azureml": "azure",
    "onprem": "kubernetes",
    "cluster": "kubernetes",
}
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


class _Missing:
    """The value at a path that does not exist. One instance, kept by copy and pickle (a
    plan read back from disk compares with `is MISSING` as the one that built it)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


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


def oidc_trust_pinned(value: Any, expected: Any, records: Iterable[Record]) -> bool:
    """Every web-identity statement of a trust policy names one federated provider and pins
    the token's `<issuer>:sub` and `<issuer>:aud` with StringEquals to values free of
    wildcards, and matches no claim with another operator (StringLike and the like)."""
    if value is MISSING or value is None:
        return True
    for st in _policy_statements(value):
        actions = _as_list(st.get("Action", []))
        if st.get("Effect", "Allow") != "Allow" or "sts:AssumeRoleWithWebIdentity" not in actions:
            continue
        principal = st.get("Principal")
        federated = principal.get("Federated") if isinstance(principal, Mapping) else None
        if not isinstance(federated, str) or "*" in federated:
            return False
        condition = st.get("Condition")
        if not isinstance(condition, Mapping) or set(condition) != {"StringEquals"}:
            return False
        equals = condition["StringEquals"]
        if not isinstance(equals, Mapping):
            return False
        for claim in ("sub", "aud"):
            pinned = [v for k, v in equals.items() if str(k).endswith(f":{claim}")]
            if len(pinned) != 1:
                return False
            values = _as_list(pinned[0])
            if len(values) != 1 or not isinstance(values[0], str) or set(values[0]) & set("*?"):
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


# --- IAM: can a role rewrite its own permissions? ------------------------------------------------
# A small IAM evaluator over the documents the plan recorded: explicit Deny wins, an Allow needs a
# matching action, resource and conditions. A condition on a key the request carries (the target
# role's permissions boundary) is evaluated; one on any other key is one the caller can satisfy
# for an Allow (region, passed-to service) and can avoid for a Deny.
ROLE_TYPE = "aws:iam/role:Role"
ROLE_POLICY_TYPE = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT_TYPE = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
SELF_REWRITE_ACTIONS = (
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
)
_IAM_ARN = re.compile(r"arn:(aws[\w-]*):(?:iam|sts)::(\d{12}):")
POLICY_REWRITE_ACTIONS = (
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
)


@functools.lru_cache(maxsize=4096)
def _glob_regex(pattern: str, case: bool) -> re.Pattern[str]:
    """IAM's wildcards (`*`, `?`) as a compiled regex; policies repeat the same few patterns."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, 0 if case else re.IGNORECASE)


def _glob(pattern: str, value: str, *, case: bool = True) -> bool:
    return _glob_regex(pattern, case).fullmatch(value) is not None


def _condition_holds(condition: Any, context: Mapping[str, Any], effect: str) -> bool:
    if not isinstance(condition, Mapping):
        return True
    for operator, pairs in condition.items():
        for key, wanted in (pairs or {}).items():
            if key not in context:
                if effect == "Deny":
                    return False
                continue
            got = context[key]
            if got is None:
                if not operator.endswith("IfExists"):
                    return False
                continue
            op = operator.removesuffix("IfExists")
            wanted_list = [str(w) for w in _as_list(wanted)]
            if op in ("StringEquals", "ArnEquals"):
                ok = str(got) in wanted_list
            elif op in ("StringLike", "ArnLike"):
                ok = any(_glob(w, str(got)) for w in wanted_list)
            elif op in ("StringNotEquals", "ArnNotEquals"):
                ok = str(got) not in wanted_list
            elif op in ("StringNotLike", "ArnNotLike"):
                ok = not any(_glob(w, str(got)) for w in wanted_list)
            else:
                ok = effect == "Allow"
            if not ok:
                return False
    return True


def _statement_matches(st: Mapping[str, Any], action: str, resource: str) -> bool:
    if "NotAction" in st:
        acts = _as_list(st["NotAction"])
        if any(isinstance(a, str) and _glob(a, action, case=False) for a in acts):
            return False
    elif not any(
        isinstance(a, str) and _glob(a, action, case=False) for a in _as_list(st.get("Action", []))
    ):
        return False
    if "NotResource" in st:
        return not any(
            isinstance(r, str) and _glob(r, resource) for r in _as_list(st["NotResource"])
        )
    return any(isinstance(r, str) and _glob(r, resource) for r in _as_list(st.get("Resource", [])))


def iam_allows(
    documents: Iterable[Any],
    action: str,
    resource: str,
    context: Mapping[str, Any] | None = None,
) -> bool:
    """Whether identity policies `documents` (JSON strings or dicts) allow `action` on
    `resource`, given request `context` (condition key -> value; None for absent)."""
    context = context or {}
    allowed = False
    for doc in documents:
        for st in _policy_statements(doc):
            effect = st.get("Effect", "Allow")
            if not _statement_matches(st, action, resource):
                continue
            if not _condition_holds(st.get("Condition"), context, effect):
                continue
            if effect == "Deny":
                return False
            allowed = True
    return allowed


def self_rewrites(role: Record, records: Iterable[Record]) -> list[str]:
    """How `role` could rewrite its own permissions: `<action> on <resource>` per open path.

    Paths: change its own role (inline or attached policies, trust, boundary); change a managed
    policy attached to it, or one that bounds any role of the stack (its permissions boundary);
    remove any role's permissions boundary."""
    records = list(records)
    name = role.inputs.get("name") or role.name
    boundary = role.inputs.get("permissionsBoundary")
    documents = [
        r.inputs.get("policy")
        for r in records
        if r.type == ROLE_POLICY_TYPE and r.inputs.get("role") in (name, role.outputs.get("id"))
    ]
    documents += [
        p["policy"]
        for p in _as_list(role.inputs.get("inlinePolicies") or [])
        if isinstance(p, Mapping) and p.get("policy")
    ]
    # The plan records inputs only: the role's ARN takes its partition and account from the
    # IAM ARNs its own documents (or trust) name.
    seen = _IAM_ARN.search(json.dumps([role.inputs.get("assumeRolePolicy"), *documents]))
    home = f"arn:{seen[1]}:iam::{seen[2]}:" if seen else "arn:aws:iam::000000000000:"
    arn = role.outputs.get("arn") or f"{home}role/{name}"
    paths = [
        f"{a} on {arn}"
        for a in SELF_REWRITE_ACTIONS
        if iam_allows(documents, a, arn, {"iam:PermissionsBoundary": boundary})
    ]
    governing = set(_as_list(role.inputs.get("managedPolicyArns") or []))
    governing |= {
        r.inputs.get("policyArn")
        for r in records
        if r.type == ATTACHMENT_TYPE and r.inputs.get("role") == name
    }
    governing |= {
        r.inputs.get("permissionsBoundary")
        for r in records
        if r.type == ROLE_TYPE and r.inputs.get("permissionsBoundary")
    }
    paths += [
        f"{a} on {p}"
        for p in sorted(g for g in governing if isinstance(g, str))
        for a in POLICY_REWRITE_ACTIONS
        if iam_allows(documents, a, p)
    ]
    for other in records:
        if other.type == ROLE_TYPE and other.inputs.get("permissionsBoundary"):
            other_arn = other.outputs.get("arn") or f"{home}role/{other.inputs.get('name')}"
            a = "iam:DeleteRolePermissionsBoundary"
            if iam_allows(
                documents,
                a,
                other_arn,
                {"iam:PermissionsBoundary": other.inputs["permissionsBoundary"]},
            ):
                paths.append(f"{a} on {other_arn}")
    return list(dict.fromkeys(paths))


def cannot_rewrite_own_permissions(value: Any, expected: Any, records: Iterable[Record]) -> bool:
    """The role named `value` has no path to rewrite its own permissions (see self_rewrites)."""
    records = list(records)
    roles = [
        r for r in records if r.type == ROLE_TYPE and (r.inputs.get("name") or r.name) == value
    ]
    return all(not self_rewrites(r, records) for r in roles)


def _in_retained_namespace(value: Any, expected: Any, records: Iterable[Record]) -> bool:
    """A namespaced object's namespace is one the stack declares, protected and retained."""
    if value is MISSING or value is None:
        return True
    return any(
        r.type == "kubernetes:core/v1:Namespace"
        and (r.inputs.get("metadata") or {}).get("name") == value
        and r.options.get("protect")
        and r.options.get("retainOnDelete")
        for r in records
    )


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
    "oidc_trust_pinned": oidc_trust_pinned,
    "ref_exists": _ref_exists,
    "sums_to": _sums_to,
    "cannot_rewrite_own_permissions": cannot_rewrite_own_permissions,
    "in_retained_namespace": _in_retained_namespace,
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
    "oidc_trust_pinned": "pins, in every web-identity statement, the token's `sub` and `aud` "
    "with StringEquals to one value each, free of wildcards",
    "ref_exists": "names a resource in this stack (`{e}`)",
    "sums_to": "values sum to `{e}`",
    "cannot_rewrite_own_permissions": "names a role whose policies let it change none of its own "
    "role, the managed policies attached to it, any role's permissions boundary policy, nor "
    "remove a boundary",
    "in_retained_namespace": "names a namespace of the stack that is protected and retained",
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
