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
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
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

from core.config import PROJECT_ROOT, ConfigError, load_stack
from core.controls import Control, Record, all_controls, evaluate_control, tiers_of

PACK_NAME = "mlops-controls"
UNSEEN_OPTIONS = ("$opts.retainOnDelete",)
"""Resource options the policy analyzer does not hand to a pack; `mlops plan` checks them."""
_ENV_TAGS = ("mlops:environment", "mlops/environment")
_PREFIX_OF_PLATFORM = {
    "aws": ("aws:",),
    "azure": ("azure-native:",),
    "kubernetes": ("kubernetes:",),
}


@dataclass(frozen=True)
class StackContext:
    """What a pack needs from the stack: its tier and its suppressions (control id -> why)."""

    environment: str | None = None
    suppressions: Mapping[str, str] = field(default_factory=dict)


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
        settings.environment, {s.control: s.justification for s in settings.suppressions}
    )


def enforcement(control: Control, ctx: StackContext) -> EnforcementLevel:
    """Mandatory where the control fails the tier; advisory where waived or suppressed."""
    if control.id in ctx.suppressions:
        return EnforcementLevel.ADVISORY
    if ctx.environment is None or ctx.environment in tiers_of(control):
        return EnforcementLevel.MANDATORY
    return EnforcementLevel.ADVISORY


def records_of(resources: Iterable[PolicyResource]) -> list[Record]:
    """The analyzer's resources as the plan's records (inputs and the `protect` option)."""
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
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


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


def validator(
    control: Control, ctx: StackContext
) -> Callable[[StackValidationArgs, ReportViolation], None]:
    """The validate function of one control's policy."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        if control.property_path in UNSEEN_OPTIONS or (
            control.when is not None and control.when[0] in UNSEEN_OPTIONS
        ):
            return  # not visible to a policy pack; `mlops plan` reports it
        records = records_of(args.resources)
        environment = _environment_of(records, ctx)
        finding = evaluate_control(
            control, records, environment=environment, suppressions=ctx.suppressions
        )
        if not finding.failures:
            return
        urns = {r.name: r.urn for r in records}
        note = f" ({finding.status}: {finding.note})" if finding.note else ""
        for failure in finding.failures:
            name = failure.split(":", 1)[0]
            report_violation(f"{control.id} {control.title}: {failure}{note}", urns.get(name))

    return validate


def policies(ctx: StackContext, platform: str | None = None) -> list[StackValidationPolicy]:
    """One policy per control (of one platform, or all), enforced as the tier requires."""
    return [
        StackValidationPolicy(
            name=control.id.lower(),
            description=f"{control.title}. {control.rationale}",
            validate=validator(control, ctx),
            enforcement_level=enforcement(control, ctx),
        )
        for control in all_controls(platform)
    ]


def build_pack(ctx: StackContext | None = None) -> PolicyPack:
    """The pack the analyzer serves (constructing a PolicyPack starts serving under Pulumi)."""
    return PolicyPack(name=PACK_NAME, policies=policies(ctx or stack_context()))
