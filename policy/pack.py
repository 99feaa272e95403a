"""One CrossGuard policy per control of core/controls, judged exactly as `mlops plan` judges it.

Each control becomes a `StackValidationPolicy` (a control may compare a resource with others,
e.g. a reference that must name a resource of the stack), whose validate function turns the
stack's resources into the plan's `Record`s and calls `core.controls.evaluate_control`. The
stack (`PULUMI_STACK`, set by the Pulumi CLI) gives the tier and suppressions from its
`Pulumi.<stack>.yaml`; without a readable stack file the tier comes from the `mlops:environment`
tag (label `mlops/environment` on-prem) every resource carries.

Enforcement per tier: a control whose failure fails the stack's tier in `mlops plan` (every
control in staging and prod; in dev those without a dev exception) is mandatory; a control the
tier waives or the stack suppresses is advisory, so the violation is shown but does not block.

The engine does not hand a pack the `retainOnDelete` option (`core.controls.seen_by_policy_packs`):
the policies of those controls stay in the pack, advisory, and answer every analysis as not
applicable with a reason that names the control and `mlops plan`, which checks them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from core.config import PROJECT_ROOT, ConfigError, load_stack
from core.controls import (
    PLATFORM_OF_BLUEPRINT,
    Control,
    Record,
    all_controls,
    checked_by_the_program,
    evaluate_control,
    seen_by_policy_packs,
    tiers_of,
    values_at,
)

PACK_NAME = "mlops-controls"
_ENV_TAGS = ("mlops:environment", "mlops/environment")
_PREFIX_OF_PLATFORM = {
    "aws": ("aws:",),
    "azure": ("azure-native:",),
    "kubernetes": ("kubernetes:",),
}


@dataclass(frozen=True)
class StackContext:
    """What a pack needs from the stack: its tier, its suppressions (control id -> why) and
    its platform (the pack then holds that platform's controls only)."""

    environment: str | None = None
    suppressions: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None


def stack_context(stack: str | None = None, root: Path = PROJECT_ROOT) -> StackContext:
    """The tier and suppressions of the stack being deployed, from its stack file."""
    stack = stack if stack is not None else os.environ.get("PULUMI_STACK")
    if not stack:
        return StackContext()
    try:
        settings = load_stack(stack, root)
    except (FileNotFoundError, ConfigError):
        return StackContext()  # the program itself reports a bad config
    return StackContext(
        settings.environment,
        {s.control: s.justification for s in settings.suppressions},
        PLATFORM_OF_BLUEPRINT.get(settings.blueprint),  # unknown: every control
    )


def enforcement(control: Control, ctx: StackContext) -> EnforcementLevel:
    """Mandatory where the control fails the tier; advisory where waived or suppressed, and
    for a control the pack cannot judge (it never reports a violation)."""
    if control.id in ctx.suppressions or not seen_by_policy_packs(control):
        return EnforcementLevel.ADVISORY
    if ctx.environment is None or ctx.environment in tiers_of(control):
        return EnforcementLevel.MANDATORY
    return EnforcementLevel.ADVISORY


UNKNOWN = "<unknown during preview>"
"""What an input the engine cannot know yet (a preview before a dependency exists) becomes."""
_DOT = re.compile(r"\.(?![^\[]*\])")  # a dot outside `["a.b"]`
CROSS_RECORD_CHECKS = frozenset({"ref_exists", "sums_to", "cannot_rewrite_own_permissions"})
"""Checks that read other resources than the one judged: any unknown input may change them."""


def records_of(resources: Iterable[PolicyResource]) -> list[Record]:
    """The analyzer's resources as the plan's records (inputs and the `protect` option).

    The analyzer wraps props in proxies (`Mapping`/`Sequence`, not dict/list) that raise
    UnknownValueError on a value unknown during preview; those values become UNKNOWN."""
    out: list[Record] = []
    for r in resources:
        package = r.resource_type.split(":")[0]
        out.append(
            Record(
                urn=r.urn,
                type=r.resource_type,
                name=r.name,
                parent=r.parent.urn if r.parent is not None else "",
                custom=package not in ("mlops", "pulumi"),
                inputs=_plain(r.props),
                outputs={},
                options={"protect": bool(r.opts.protect) if r.opts is not None else False},
            )
        )
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _known(value, k) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_known(value, i) for i in range(len(value))]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _known(container: Any, key: Any) -> Any:
    try:
        return _plain(container[key])
    except UnknownValueError:
        return UNKNOWN


def _has_unknown(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return value == UNKNOWN


def _uncertain(control: Control, records: list[Record], with_unknown: set[str]) -> set[str]:
    """Names of the resources whose verdict on `control` depends on an unknown value
    (`with_unknown`: the resources that have one anywhere in their inputs)."""
    if not with_unknown:
        return set()
    if control.check in CROSS_RECORD_CHECKS:
        return {r.name for r in records}
    paths = [control.property_path] + ([control.when[0]] if control.when else [])
    found: set[str] = set()
    for r in records:
        if r.name not in with_unknown:
            continue
        for path in paths:
            parts = _DOT.split(path)
            prefixes = (".".join(parts[: i + 1]) for i in range(len(parts)))
            if any(UNKNOWN in values_at(r.inputs, p) for p in prefixes if not p.startswith("$")):
                found.add(r.name)
    return found


def _environment_of(records: list[Record], ctx: StackContext) -> str:
    if ctx.environment:
        return ctx.environment
    for r in records:
        for bag in ("tags", "labels"):
            found = r.inputs.get(bag) or (r.inputs.get("metadata") or {}).get(bag) or {}
            for tag in _ENV_TAGS:
                if isinstance(found, Mapping) and found.get(tag) in ("dev", "staging", "prod"):
                    return str(found[tag])
    return "prod"  # unknown tier: judge it by the strictest


class Analysis:
    """The stack's resources as records, converted once per analysis for all the policies.

    The analyzer calls every policy of the pack once per `AnalyzeStack`, each with its own copy
    of the same resources; a policy called a second time, or other resources, means a new
    analysis (a preview, then the update with every value known)."""

    def __init__(self) -> None:
        self._key: tuple[str, ...] | None = None
        self._seen: set[str] = set()
        self.records: list[Record] = []
        self.with_unknown: set[str] = set()

    def of(self, policy: str, resources: list[PolicyResource]) -> list[Record]:
        key = tuple(r.urn for r in resources)
        if key != self._key or policy in self._seen:
            self._key, self._seen, self.records = key, set(), records_of(resources)
            self.with_unknown = {r.name for r in self.records if _has_unknown(r.inputs)}
        self._seen.add(policy)
        return self.records


def validator(
    control: Control, ctx: StackContext, analysis: Analysis | None = None
) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """The validate function of one control's policy."""
    analysis = analysis or Analysis()

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        if not seen_by_policy_packs(control):
            args.not_applicable(not_checkable_reason(control))
        records = analysis.of(control.id, list(args.resources))
        environment = _environment_of(records, ctx)
        finding = evaluate_control(
            control, records, environment=environment, suppressions=ctx.suppressions
        )
        uncertain = _uncertain(control, records, analysis.with_unknown)
        certain = [f for f in finding.failures if f.split(":", 1)[0] not in uncertain]
        deferred = (
            {f.split(":", 1)[0] for f in finding.failures}
            if control.check in CROSS_RECORD_CHECKS  # a pass found what it looked for
            else uncertain & set(finding.resources)
        )
        if not certain and deferred:
            # the analyzer reports "can't run policy during preview" (advisory); `pulumi up`
            # analyzes the stack again with every value known
            raise UnknownValueError(UNKNOWN_STRING_VALUE, [min(deferred), control.property_path])
        urns = {r.name: r.urn for r in records}
        note = f" ({finding.status}: {finding.note})" if finding.note else ""
        for failure in certain:
            name = failure.split(":", 1)[0]
            report_violation(f"{control.id} {control.title}: {failure}{note}", urns.get(name))

    return validate


def not_checkable_reason(control: Control) -> str:
    """Why the pack answers a control as not applicable (shown by the analyzer)."""
    by = (
        "the kit's program refuses a failing resource before registering it, and `mlops plan "
        "<stack>` reports it"
        if checked_by_the_program(control)
        else "`mlops plan <stack>` checks it"
    )
    return (
        f"{control.id} {control.title}: not checkable by a policy pack (the Pulumi engine "
        f"does not pass the retainOnDelete resource option to policy packs); {by}, failing in "
        "the tiers docs/controls.md lists"
    )


def _description(control: Control) -> str:
    text = f"{control.title}. {control.rationale}"
    if not seen_by_policy_packs(control):
        text += " (Not checkable by a policy pack: `mlops plan` checks it.)"
    return text


def policies(ctx: StackContext, platform: str | None = None) -> list[StackValidationPolicy]:
    """One policy per control (of `platform`, else the stack's, else all), enforced as the
    tier requires; the policies share one conversion of the resources per analysis."""
    analysis = Analysis()
    return [
        StackValidationPolicy(
            name=control.id.lower(),
            description=_description(control),
            validate=validator(control, ctx, analysis),
            enforcement_level=enforcement(control, ctx),
        )
        for control in all_controls(platform or ctx.platform)
    ]


def build_pack(ctx: StackContext | None = None) -> PolicyPack:
    """The pack the analyzer serves (constructing a PolicyPack starts serving under Pulumi)."""
    return PolicyPack(name=PACK_NAME, policies=policies(ctx or stack_context()))
