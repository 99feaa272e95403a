"""`mlops release` and `mlops promote`: pin an approved model version on a stack, apply it with
the Pulumi Automation API, check the endpoint, and keep an audit record.

    release STACK:  resolve -> pin -> apply -> healthy? -> smoke prediction -> record
                    (any failure after the pin: pin the previous version back, apply, record)
    promote A -> B: approval (prod) -> resolve in A -> copy into B's registry with lineage
                    -> release B

Everything that can be refused (unknown stack, no approved version, a version not in the
registry, a prod target without a recorded approval) is refused before the first change, with
`ReleaseError`. A release that was attempted and undone raises `ReleaseFailed` after the
rollback and the record are written. Platform specifics (registries, health, smoke, tags,
copies) live in `aws`, `azure` and `mlflow` beside it; this module only orchestrates.

Records: one JSON line per attempt, appended to `.mlops/releases/releases.jsonl` (gitignored;
CI uploads it as an artifact), and a tag on the registry version where the registry has tags.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.config import PROJECT_ROOT, ConfigError, StackSettings, load_stack
from core.contract import CLUSTER_BLUEPRINT
from pipelines.release import (
    GUARD_ENV,
    MODEL_KEY,
    PREVIOUS_KEY,
    RECORDS,
    Approval,
    Candidate,
    Platform,
    ReleaseError,
    ReleaseFailed,
    ReleaseRecord,
    Say,
    SmokeInput,
    StackDriver,
    append_record,
    ci_context,
    marker_value,
    now_iso,
    released_version,
    serving_tag,
    short_error,
)
from pipelines.release.platforms import platform_for

POLICY_PACK = "policy"
"""The kit's CrossGuard pack (policy/, the control table): every update the drivers run
(`mlops apply`, `release`, `promote`) passes it, so its preview phase enforces the controls."""

Planner = Callable[[str, Path, Mapping[str, Any]], tuple[list[str], list[str], list[str]]]
"""The offline plan's diff under config overrides: (added, removed, changed) resource names.
`mlops.plan.plan_diff` in the CLI; a dry run without one lists no resources."""


@functools.cache
def _pulumi_cli() -> Any:
    """The `pulumi` CLI for the Automation API, its version checked once per process rather
    than once per stack driver (`mlops promote` opens one for each of its two stacks)."""
    from pulumi import automation as auto

    return auto.PulumiCommand()


class AutomationDriver:
    """The stack through the Pulumi Automation API (which runs the `pulumi` CLI in `root`)."""

    def __init__(self, stack: str, root: Path = PROJECT_ROOT):
        from pulumi import automation as auto

        self._auto = auto
        self._root = root
        try:
            # The program refuses an apply that does not come through here (GUARD_ENV).
            workspace = auto.LocalWorkspace(
                work_dir=str(root), env_vars={GUARD_ENV: stack}, pulumi_command=_pulumi_cli()
            )
            self._stack = auto.Stack.select(stack, workspace)
        except FileNotFoundError as exc:
            raise ReleaseError(
                "the Pulumi CLI is not on PATH; install it (https://www.pulumi.com/docs/install/)"
                " and log in to the stack's backend"
            ) from exc
        except auto.errors.CommandError as exc:
            raise ReleaseError(
                f"pulumi cannot select stack {stack!r}: {short_error(exc)}; run `pulumi login` and "
                f"`pulumi stack init {stack}` once"
            ) from exc

    def outputs(self) -> dict[str, Any]:
        return {k: v.value for k, v in self._stack.outputs().items()}

    def get(self, key: str, *, path: bool = False) -> str | None:
        try:
            return str(self._stack.get_config(key, path=path).value) or None
        except self._auto.errors.CommandError:
            return None

    def set(self, key: str, value: str, *, path: bool = False) -> None:
        self._stack.set_config(key, self._auto.ConfigValue(value), path=path)

    def remove(self, key: str, *, path: bool = False) -> None:
        if self.get(key, path=path) is not None:
            self._stack.remove_config(key, path=path)

    def up(self, say: Say) -> dict[str, Any]:
        packs = [str(self._root / POLICY_PACK)] if (self._root / POLICY_PACK).is_dir() else []
        if not packs:
            say(
                f"[yellow]no policy pack at {self._root / POLICY_PACK}: the controls are not "
                "enforced by Pulumi on this update[/]"
            )
        try:
            result = self._stack.up(
                on_output=lambda line: say(line.rstrip()), policy_packs=packs or None
            )
        except self._auto.errors.CommandError as exc:
            raise ReleaseFailed(f"pulumi up failed: {short_error(exc)}") from exc
        return {k: v.value for k, v in result.outputs.items()}


def load(stack: str, root: Path) -> StackSettings:
    """The validated stack, or ReleaseError (unknown stack, bad config)."""
    try:
        return load_stack(stack, root)
    except FileNotFoundError as exc:
        raise ReleaseError(str(exc)) from exc
    except ConfigError as exc:
        raise ReleaseError(f"{exc}\nfix the stack config before releasing") from exc


def chain(stack: str, root: Path = PROJECT_ROOT) -> dict[str, str]:
    """The promotion chain that starts at `stack`: {"blueprint", "source": stack, "staging",
    "prod"}, the stacks after the source by tier ("" when the chain has none), following each
    stack's `promotion.target`. The release workflows' `resolve` job runs this (`mlops
    chain`). ReleaseError when the chain loops, changes blueprint or goes down a tier."""
    first = load(stack, root)
    if first.blueprint == "cluster":
        raise ReleaseError(
            f"{stack} is a cluster stack: it serves no model, so it has no release chain; "
            f"apply it with `mlops apply {stack}` (docs/blueprints/cluster.md)"
        )
    found = {"blueprint": first.blueprint, "dev": "", "staging": "", "prod": ""}
    order = ("dev", "staging", "prod")
    name: str | None = stack
    settings = first
    while name:
        if found[settings.environment] or (
            name != stack
            and order.index(settings.environment) <= max(order.index(t) for t in order if found[t])
        ):
            raise ReleaseError(
                f"the promotion chain from {stack} reaches {name} ({settings.environment}) "
                f"after {', '.join(found[t] for t in order if found[t])}; set "
                "mlops:promotion.target so that each stack promotes to a higher tier"
            )
        if settings.blueprint != first.blueprint:
            raise ReleaseError(
                f"the promotion chain from {stack} ({first.blueprint}) reaches {name} "
                f"({settings.blueprint}); promote between stacks of one blueprint"
            )
        found[settings.environment] = name
        name = settings.promotion.target
        settings = load(name, root) if name else settings
    after = {t: "" if found[t] == stack else found[t] for t in ("staging", "prod")}
    return {"blueprint": first.blueprint, "source": stack, **after}


@dataclass(frozen=True)
class DryRun:
    """What a release would change: config keys, and the resources the offline plan adds,
    removes or changes."""

    stack: str
    version: str
    previous: str | None
    config: dict[str, tuple[str | None, str | None]]
    added: list[str]
    removed: list[str]
    changed: list[str]


def _blue_green(settings: StackSettings, previous: str | None) -> bool:
    """Azure ML keeps the serving version as the stable deployment while the new one takes
    its canary share; the other platforms shift traffic inside one update."""
    return (
        settings.blueprint == "azureml"
        and previous is not None
        and settings.rollout.strategy != "all-at-once"
    )


def resolve(platform: Platform, version: str | None) -> Candidate:
    """The version to release: `version` (must exist and be approved) or the newest approved."""
    if version is None:
        found = platform.newest_approved()
        if found is None:
            raise ReleaseError(
                f"{platform.registry} has no approved version; approve one in the registry "
                "(docs/releases.md, step 1) or run the training pipeline"
            )
        return found
    found = platform.get(version)  # raises ReleaseError when it is not in the registry
    if not found.approved:
        raise ReleaseError(
            f"version {version} in {platform.registry} is not approved; approve it first "
            "(docs/releases.md, step 1) or release an approved version"
        )
    return found


def release(
    stack: str,
    *,
    version: str | None = None,
    dry_run: bool = False,
    approval: Approval | None = None,
    root: Path = PROJECT_ROOT,
    platform: Platform | None = None,
    driver: StackDriver | None = None,
    records: Path | None = None,
    smoke: SmokeInput | None = None,
    promoted_from: Mapping[str, Any] | None = None,
    planner: Planner | None = None,
    say: Say = lambda _m: None,
) -> ReleaseRecord | DryRun:
    """Release `version` (default: the newest approved) on `stack`. See the module doc."""
    settings = load(stack, root)
    if settings.environment == "prod" and approval is None:
        raise ReleaseError(
            f"{stack} is a prod stack: a release needs the approval CI recorded; pass "
            "--approved-by and --approval-run (the prod job of the release workflow does)"
        )
    if version is not None and not version.isdigit():
        raise ReleaseError(f"--model-version={version!r} is not a version number such as 3")
    smoke = smoke or SmokeInput.from_contract()
    driver = driver or AutomationDriver(stack, root)
    outputs = driver.outputs()
    if platform is None:
        platform = platform_for(settings, outputs)
    candidate = resolve(platform, version)
    pinned = driver.get(MODEL_KEY) or settings.model
    released = released_version(platform, stack)
    previous = released.version if released else pinned
    say(f"{stack}: {platform.registry} version {candidate.version} (serving: {previous or 'none'})")
    if released and pinned != released.version:
        say(
            f"[yellow]Pulumi.{stack}.yaml pins {MODEL_KEY}={pinned or '(unset)'}, but the "
            f"registry's release marker says {stack} serves {released.version}[/]"
        )
    blue_green = _blue_green(settings, previous)

    if dry_run:
        config = {MODEL_KEY: (previous, candidate.version)}
        overrides: dict[str, Any] = {"model": candidate.version}
        if blue_green and previous != candidate.version:
            config[PREVIOUS_KEY] = (settings.rollout.previous_model, previous)
            overrides["rollout"] = {
                **settings.rollout.model_dump(by_alias=True, exclude_none=True),
                "previousModel": previous,
            }
        unchanged = previous == candidate.version or planner is None
        added, removed, changed = ([], [], []) if unchanged else planner(stack, root, overrides)
        return DryRun(stack, candidate.version, previous, config, added, removed, changed)

    ctx = ci_context()
    record = ReleaseRecord(
        stack=stack,
        platform=platform.name,
        version=candidate.version,
        previous=previous,
        ref=candidate.ref,
        registry=platform.registry,
        lineage=dict(candidate.lineage),
        promoted_from=dict(promoted_from or {}),
        approval=asdict(approval) if approval else {},
        started=now_iso(),
        **ctx,
    )
    path = records or root / RECORDS
    if _older(candidate.version, previous):
        record.kind = "rollback"
        say(f"[yellow]rollback[/]: {stack} goes from {previous} back to {candidate.version}")
    if previous == candidate.version and pinned == candidate.version:
        record.outcome, record.reason = "unchanged", f"{stack} already serves {previous}"
        if released is None:  # released before the marker existed: the registry learns it
            platform.tag(candidate, serving_tag(stack), marker_value())
            record.step("mark", True, f"{serving_tag(stack)} on {candidate.ref}")
        record.finished = now_iso()
        append_record(record, path)
        return record
    try:
        driver.set(MODEL_KEY, candidate.version)
        if blue_green:
            driver.set(PREVIOUS_KEY, str(previous), path=True)
        record.step("pin", True, f"{MODEL_KEY}={candidate.version}")
        say(f"apply: pulumi up with {MODEL_KEY}={candidate.version}")
        outputs = driver.up(say)
        record.step("apply", True)
        record.step("healthy", True, platform.wait_healthy(outputs, candidate.version))
        say("endpoint healthy; smoke prediction")
        record.step("smoke", True, platform.smoke(outputs, candidate.version, smoke))
        # The registry's release marker moves only now: every later apply serves this version.
        platform.tag(candidate, serving_tag(stack), marker_value())
        record.step("mark", True, f"{serving_tag(stack)} on {candidate.ref}")
        if blue_green:
            driver.remove(PREVIOUS_KEY, path=True)
            say(f"all traffic to {candidate.version}: pulumi up")
            driver.up(say)
            record.step("finalize", True, f"{previous} retired")
        record.outcome, record.reason = "released", f"{stack} serves {candidate.version}"
    except Exception as exc:  # noqa: BLE001 - whatever failed after the pin is rolled back
        record.step("failed", False, str(exc))
        _roll_back(driver, record, previous, str(exc), say)
    finally:
        record.finished = now_iso()
        append_record(record, path)
        _tag(platform, candidate, record, say)
    if record.outcome != "released":
        raise ReleaseFailed(
            f"release of {candidate.version} on {stack} {record.outcome}: {record.reason}", record
        )
    return record


def _older(version: str, than: str | None) -> bool:
    return bool(than) and version.isdigit() and str(than).isdigit() and int(version) < int(than)


def apply(
    stack: str,
    *,
    dry_run: bool = False,
    root: Path = PROJECT_ROOT,
    platform: Platform | None = None,
    driver: StackDriver | None = None,
    records: Path | None = None,
    say: Say = lambda _m: None,
) -> ReleaseRecord | DryRun:
    """`pulumi up` of `stack` serving the version the registry's release marker names, whatever
    the stack file pins: the workflows (and people) apply through this, so an apply from an
    old checkout cannot roll a release back. A file pin older than the release is reported and
    overridden; a newer one is refused (a new version goes through `mlops release`)."""
    settings = load(stack, root)
    driver = driver or AutomationDriver(stack, root)
    pinned = driver.get(MODEL_KEY) or settings.model
    released = None
    if settings.blueprint == CLUSTER_BLUEPRINT:
        say(f"{stack} is a cluster stack: it serves no model, the stack file decides")
    elif platform is None:
        outputs = driver.outputs()
        if outputs:
            platform = platform_for(settings, outputs)
        else:
            say(f"{stack} has no outputs yet (first apply): no registry to ask, the file decides")
    if platform is not None:
        released = released_version(platform, stack)
    version = released.version if released else pinned
    overridden = released is not None and pinned != released.version
    if overridden and released is not None:
        if pinned and _older(released.version, pinned):
            raise ReleaseError(
                f"Pulumi.{stack}.yaml pins {MODEL_KEY}={pinned}, newer than version "
                f"{released.version}, which the registry records as released on {stack}; a new "
                f"version reaches a stack through `mlops release {stack} --model-version "
                f"{pinned}` (health and smoke checked, recorded), or set {MODEL_KEY} back to "
                f"{released.version}"
            )
        say(
            f"[bold yellow]Pulumi.{stack}.yaml pins {MODEL_KEY}={pinned or '(unset)'}, but "
            f"the registry records the release of version {released.version} on {stack}: "
            f"applying {released.version}[/] (to go back, `mlops release {stack} "
            f"--model-version {pinned}`)"
        )
    if dry_run:
        config = {MODEL_KEY: (pinned, version)} if overridden else {}
        return DryRun(stack, version or "(none)", pinned, config, [], [], [])
    record = ReleaseRecord(
        stack=stack,
        platform=platform.name if platform else settings.blueprint,
        version=version or "",
        previous=pinned,
        kind="apply",
        pinned=pinned if overridden else None,
        ref=released.ref if released else "",
        registry=platform.registry if platform else "",
        started=now_iso(),
        **ci_context(),
    )
    path = records or root / RECORDS
    try:
        if overridden and version:
            driver.set(MODEL_KEY, version)
            record.step("pin", True, f"{MODEL_KEY}={version} (file: {pinned or '(unset)'})")
        driver.up(say)
        record.step("apply", True)
    except ReleaseFailed as exc:
        record.step("apply", False, str(exc))
        record.outcome, record.reason = "failed", str(exc)
        raise ReleaseFailed(f"apply of {stack} failed: {exc}", record) from exc
    finally:
        record.finished = now_iso()
        if record.outcome == "started":
            record.outcome = "applied"
            record.reason = f"{stack} serves {version or 'no model'}" + (
                f" (the release marker; the file pinned {pinned or '(unset)'})"
                if overridden
                else ""
            )
        append_record(record, path)
    return record


def _roll_back(
    driver: StackDriver, record: ReleaseRecord, previous: str | None, why: str, say: Say
) -> None:
    say(f"[red]release failed[/]: {why}; pinning {previous or 'no model'} back")
    try:
        if previous:
            driver.set(MODEL_KEY, previous)
        else:
            driver.remove(MODEL_KEY)
        driver.remove(PREVIOUS_KEY, path=True)
        driver.up(say)
    except Exception as exc:  # noqa: BLE001 - reported with the manual fix
        record.outcome = "rollback-failed"
        record.reason = (
            f"{why}; rolling back to {previous or 'no model'} failed too: {exc}. Run "
            f"`pulumi config set {MODEL_KEY} {previous}` and `pulumi up` by hand"
        )
        record.step("rollback", False, str(exc))
        return
    record.outcome = "rolled-back"
    record.reason = f"{why}; {previous or 'no model'} is pinned and applied again"
    record.step("rollback", True, f"{MODEL_KEY}={previous or '(unset)'}")


def _tag(platform: Platform, candidate: Candidate, record: ReleaseRecord, say: Say) -> None:
    """The outcome on the registry version too (best effort: the JSON line is the record)."""
    try:
        platform.tag(candidate, f"mlops.release.{record.stack}", f"{record.outcome} {now_iso()}")
    except Exception as exc:  # noqa: BLE001 - a registry without tag rights keeps the file record
        say(f"[yellow]could not tag the registry version[/]: {exc}")


def _promotable(source: str, platform: Platform, version: str | None) -> Candidate:
    """What a promotion copies: `version`, else the version `source` serves (its release
    marker: staging promotes what it tested), else the newest approved (a source never
    released through `mlops release`)."""
    if version is not None:
        return resolve(platform, version)
    serving = released_version(platform, source)
    if serving is None:
        return resolve(platform, None)
    if not serving.approved:
        raise ReleaseError(
            f"{source} serves version {serving.version} of {platform.registry}, which is no "
            "longer approved; approve it again or pass --model-version with an approved version"
        )
    return serving


def promote(
    source: str,
    target: str,
    *,
    version: str | None = None,
    approval: Approval | None = None,
    dry_run: bool = False,
    root: Path = PROJECT_ROOT,
    source_platform: Platform | None = None,
    target_platform: Platform | None = None,
    target_driver: StackDriver | None = None,
    source_outputs: Mapping[str, Any] | None = None,
    records: Path | None = None,
    smoke: SmokeInput | None = None,
    say: Say = lambda _m: None,
) -> ReleaseRecord | DryRun:
    """Copy an approved version of `source` (`version`, else the one `source` serves, else its
    newest approved) into `target`'s registry (lineage kept), then release it on `target`. A
    prod target needs `approval`; any approval given is recorded."""
    src, dst = load(source, root), load(target, root)
    if src.promotion.target != target:
        raise ReleaseError(
            f"{source} promotes to {src.promotion.target or 'nothing'}, not {target}; set "
            f"mlops:promotion.target: {target} in Pulumi.{source}.yaml"
        )
    if src.blueprint != dst.blueprint:
        raise ReleaseError(
            f"{source} is {src.blueprint} but {target} is {dst.blueprint}; promote between "
            "stacks of one blueprint"
        )
    if dst.environment == "prod" and approval is None:
        raise ReleaseError(
            f"{target} is prod: promotion needs the approval recorded by CI; run it from the "
            "release workflow's prod job (protected environment) with --approved-by and "
            "--approval-run"
        )
    driver = target_driver or AutomationDriver(target, root)
    if source_platform is None or target_platform is None:
        if source_outputs is None:
            source_outputs = AutomationDriver(source, root).outputs()
        source_platform = source_platform or platform_for(src, source_outputs)
        target_platform = target_platform or platform_for(dst, driver.outputs())
    candidate = _promotable(source, source_platform, version)
    say(f"promote {source_platform.registry} {candidate.version} -> {target_platform.registry}")
    lineage = {"stack": source, "registry": source_platform.registry, **asdict(candidate)}
    if dry_run:
        return DryRun(target, f"copy of {source} {candidate.version}", None, {}, [], [], [])
    copied = target_platform.import_version(source_platform, candidate)
    say(f"{target_platform.registry} version {copied.version} holds {source} {candidate.version}")
    return release(
        target,
        version=copied.version,
        approval=approval,
        root=root,
        platform=target_platform,
        driver=driver,
        records=records,
        smoke=smoke,
        promoted_from=lineage,
        say=say,
    )
