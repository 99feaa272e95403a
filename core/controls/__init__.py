"""Controls as data: one table of security and reliability controls, evaluated against the
resources an offline plan recorded.

Each row names a platform, a Pulumi resource type, a property path in that resource's inputs
(or `$opts.protect` / `$opts.retainOnDelete` for resource options), the check that enforces it
and the expected value. The rows live with their platform in `core/controls/<platform>.py`;
`core.controls.engine` holds the row type and the checks; this package holds the union of the
rows and the evaluator. The same table drives `mlops plan`, the test suite and
`docs/controls.md`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.controls import aws, azure, kubernetes
from core.controls.engine import (
    CHECK_DESCRIPTIONS,
    CHECKS,
    MISSING,
    PLATFORM_OF_BLUEPRINT,
    PLATFORMS,
    Control,
    Finding,
    Record,
    Status,
    describe,
    validate_table,
    values_at,
)

__all__ = [
    "CHECKS",
    "CHECK_DESCRIPTIONS",
    "MISSING",
    "PLATFORMS",
    "PLATFORM_OF_BLUEPRINT",
    "TABLES",
    "UNSEEN_BY_POLICY_PACKS",
    "Control",
    "Finding",
    "Record",
    "Status",
    "all_controls",
    "describe",
    "evaluate",
    "evaluate_control",
    "checked_by_the_program",
    "seen_by_policy_packs",
    "tiers_of",
    "validate_table",
    "values_at",
]

TABLES: Mapping[str, tuple[Control, ...]] = {
    "aws": tuple(aws.CONTROLS),
    "azure": tuple(azure.CONTROLS),
    "kubernetes": tuple(kubernetes.CONTROLS),
}


def all_controls(platform: str | None = None) -> tuple[Control, ...]:
    """The whole table (or one platform's rows), from `core/controls/<platform>.py`."""
    if platform is None:
        return tuple(row for name in PLATFORMS for row in TABLES[name])
    return TABLES[platform]


def _value_of(record: Record, path: str) -> list[Any]:
    if path.startswith("$opts."):
        return [record.options.get(path.removeprefix("$opts."), MISSING)]
    return values_at(record.inputs, path)


def evaluate_control(
    control: Control,
    records: list[Record],
    *,
    environment: str,
    suppressions: Mapping[str, str] | None = None,
) -> Finding:
    """One control against the recorded resources: the verdict `mlops plan`, the tests and
    the policy pack (policy/) all use."""
    suppressions = suppressions or {}
    targets = [
        r
        for r in records
        if r.custom
        and (control.resource_type in ("*", r.type))
        and (control.when is None or control.when[1] in _value_of(r, control.when[0]))
    ]
    finding = Finding(control, "n/a", resources=[r.name for r in targets])
    if not targets:
        finding.note = f"no {control.resource_type} in this stack"
        return finding
    check = CHECKS[control.check]
    for r in targets:
        bad = [
            v
            for v in _value_of(r, control.property_path)
            if not check(v, control.expected, records)
        ]
        if bad:
            shown = ["<unset>" if v is MISSING else v for v in bad]
            finding.failures.append(f"{r.name}: {control.property_path}={shown[0]!r}")
    if not finding.failures:
        finding.status = "pass"
    elif control.id in suppressions:
        finding.status, finding.note = "suppressed", suppressions[control.id]
    elif environment == "dev" and control.dev_exception:
        finding.status, finding.note = "waived", f"dev exception: {control.dev_exception}"
    else:
        finding.status = "fail"
    return finding


def tiers_of(control: Control) -> tuple[str, ...]:
    """The tiers in which a failure of the control fails the stack (staging is prod-like: a
    dev exception is waived in dev only)."""
    return ("staging", "prod") if control.dev_exception else ("dev", "staging", "prod")


UNSEEN_BY_POLICY_PACKS = ("$opts.retainOnDelete",)
"""Resource options the Pulumi engine does not hand to a policy pack (`AnalyzerResourceOptions`
has protect, ignoreChanges, deleteBeforeReplace, aliases, customTimeouts,
additionalSecretOutputs and parent, no retainOnDelete): only `mlops plan` can check them."""
_CHECKS_READING_UNSEEN = ("in_retained_namespace",)  # reads the namespaces' retainOnDelete


def seen_by_policy_packs(control: Control) -> bool:
    """Whether a CrossGuard policy pack (policy/) can judge the control: it reads nothing the
    engine withholds from packs (UNSEEN_BY_POLICY_PACKS), in its property or its `when`."""
    paths = [control.property_path] + ([control.when[0]] if control.when else [])
    return control.check not in _CHECKS_READING_UNSEEN and not any(
        p in UNSEEN_BY_POLICY_PACKS for p in paths
    )


def checked_by_the_program(control: Control) -> bool:
    """Whether the Pulumi program itself refuses a resource failing the control before it is
    registered (mlops.program): a control a pack cannot see that reads only one resource's
    options. The others a pack cannot see are left to `mlops plan`."""
    return (
        not seen_by_policy_packs(control)
        and control.property_path.startswith("$opts.")
        and control.when is None
    )


def evaluate(
    records: list[Record],
    *,
    platform: str,
    environment: str,
    suppressions: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Evaluate every control of `platform` against the recorded resources."""
    return [
        evaluate_control(c, records, environment=environment, suppressions=suppressions)
        for c in all_controls(platform)
    ]
