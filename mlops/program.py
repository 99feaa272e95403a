"""The Pulumi program: read config -> validate -> build the chosen blueprint -> export outputs.

`__main__.py` calls `main()` under `pulumi up`; the offline plan calls `run()` under mocks."""

from __future__ import annotations

import os
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

import blueprints
from core.config import ConfigError, StackSettings, component_error, validate_settings
from core.contract import check_outputs
from core.controls import (
    PLATFORM_OF_BLUEPRINT,
    Finding,
    Record,
    all_controls,
    checked_by_the_program,
    evaluate_control,
)
from core.errors import ArgsError
from mlops import alias_urns


def read_pulumi_config() -> tuple[dict[str, Any], set[str]]:
    """Every config key of the running stack and the keys Pulumi holds as secrets.

    `pulumi.Config` can only read keys it is asked for by name; rejecting unknown keys needs
    the whole bag, which the SDK keeps in `pulumi.runtime.config` (set by the engine through
    PULUMI_CONFIG, or by `set_all_config` under mocks)."""
    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secrets = set(runtime_config.get_config_secret_keys_env())
    secrets |= {k for k in values if runtime_config.is_config_secret(k)}
    return values, secrets


def load_settings() -> StackSettings:
    values, secrets = read_pulumi_config()
    return validate_settings(values, secrets, stack=pulumi.get_stack())


def run(settings: StackSettings | None = None) -> dict[str, pulumi.Input[Any]]:
    """Build the stack and export the contract's outputs; returns them for the plan."""
    settings = settings or load_settings()
    outputs = blueprints.build(settings)
    check_outputs(settings.blueprint, outputs)
    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs


def check_guarded_apply(
    stack: str, dry_run: bool, env: dict[str, str] | os._Environ[str] = os.environ
) -> str | None:
    """A `pulumi up` must come through `mlops apply` / `mlops release` (which serve the version
    the registry's release marker names), or the stack file's pin could roll a release back.
    Raises pulumi.RunError for an unguarded update; returns the warning to log, if any."""
    from pipelines.release import GUARD_ENV, UNGUARDED_ENV

    if env.get(GUARD_ENV) == stack:
        return None
    reason = env.get(UNGUARDED_ENV, "").strip()
    how = (
        f"run `mlops apply {stack}` (it applies the version the registry's release marker "
        f"names; docs/releases.md)"
    )
    if dry_run:
        return f"the preview shows the stack file's mlops:model; an apply serves the release: {how}"
    if reason:
        return f"unguarded apply of {stack} ({UNGUARDED_ENV}={reason!r}): the file's pin as is"
    raise pulumi.RunError(
        f"`pulumi up` on {stack} outside `mlops apply` could serve an older model than the last "
        f"release (the file's mlops:model); {how}, or set {UNGUARDED_ENV}=<reason> to apply the "
        "file as it is"
    )


UNSEEN_OPTION_CONTROLS = tuple(c for c in all_controls() if checked_by_the_program(c))
"""The controls on a resource option the engine withholds from policy packs (retainOnDelete):
the program checks them itself on a real preview or update (K8S-NS-05, which also reads the
namespace of each object, is left to `mlops plan`)."""


def unseen_option_failures(settings: StackSettings, records: list[Record]) -> list[Finding]:
    """The UNSEEN_OPTION_CONTROLS that fail the stack's tier on these resources."""
    platform = PLATFORM_OF_BLUEPRINT.get(settings.blueprint)
    suppressions = {s.control: s.justification for s in settings.suppressions}
    findings = [
        evaluate_control(c, records, environment=settings.environment, suppressions=suppressions)
        for c in UNSEEN_OPTION_CONTROLS
        if platform is None or c.platform == platform
    ]
    return [f for f in findings if f.status == "fail"]


def refuse_unseen_option_failures(settings: StackSettings) -> Any:
    """A stack transformation that raises before a resource is registered when its options
    fail one of UNSEEN_OPTION_CONTROLS in the stack's tier (the check the pack cannot do)."""

    def check(args: pulumi.ResourceTransformationArgs) -> None:
        record = Record(
            urn="",
            type=args.type_,
            name=args.name,
            parent="",
            custom=args.type_.split(":")[0] not in ("mlops", "pulumi"),
            inputs={},
            outputs={},
            options={
                "protect": bool(args.opts.protect),
                "retainOnDelete": bool(args.opts.retain_on_delete),
            },
        )
        failed = unseen_option_failures(settings, [record])
        if failed:
            lines = "; ".join(f"{f.control.id} {f.control.title}: {f.failures}" for f in failed)
            raise pulumi.RunError(
                f"{args.name} fails the {settings.environment} tier before it is registered "
                f"({lines}); a policy pack cannot see this option (docs/controls.md)"
            )
        return None

    return check


def main() -> None:
    try:
        warning = check_guarded_apply(pulumi.get_stack(), pulumi.runtime.is_dry_run())
        if warning:
            pulumi.log.warn(warning)
        settings = load_settings()
        alias_urns.install()
        pulumi.runtime.register_stack_transformation(refuse_unseen_option_failures(settings))
        run(settings)
    except ConfigError as exc:
        # RunError prints the message without a Python traceback.
        raise pulumi.RunError(str(exc)) from exc
    except ArgsError as exc:
        raise pulumi.RunError(component_error(pulumi.get_stack(), exc)) from exc
