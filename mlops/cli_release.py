"""`mlops release | promote | apply | chain | stacks`: CI-driven releases (top level of `mlops`).

Exit codes: 0 released (or unchanged), 1 the release was attempted and rolled back,
2 refused before any change (bad input, nothing approved, no recorded approval for prod).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.config import list_stacks, load_stack, project_root
from mlops.cli_local import DEFAULT_WORKDIR as LOCAL_WORKDIR

app = typer.Typer(
    help="CI-driven releases: release, promote, apply, chain, stacks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

VersionOpt = Annotated[
    str | None,
    typer.Option("--model-version", help="Registry version; default: the newest approved."),
]
ApproverOpt = Annotated[
    str | None,
    typer.Option("--approved-by", help="Who approved the protected CI environment (prod)."),
]
RunOpt = Annotated[
    str | None,
    typer.Option("--approval-run", help="CI run id that holds the approval (prod)."),
]
RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--project-dir",
        help="Folder of Pulumi.yaml and the stack files (default: the project around the "
        "working directory, as for every command).",
        hidden=True,
    ),
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _say(message: str) -> None:
    console.print(f"  {message}", highlight=False)


def _show(result: Any) -> None:
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.release.orchestrate import DryRun

    if isinstance(result, DryRun):
        table = Table(title=f"dry run: {result.stack} -> version {result.version}")
        table.add_column("change")
        table.add_column("what")
        for key, (old, new) in result.config.items():
            table.add_row("config", f"{key}: {old or '(unset)'} -> {new}")
        for kind, names in (("add", result.added), ("remove", result.removed)):
            for name in names:
                table.add_row(kind, name)
        for name in result.changed:
            table.add_row("update", name)
        console.print(table)
        console.print("[italic]nothing was changed (resources from the offline plan)[/]")
        return
    colour = "green" if result.outcome in ("released", "applied") else "cyan"
    console.print(
        f"[{colour}]{result.outcome}[/] {result.stack}: version {result.version} "
        f"({escape(result.reason)})"
    )


def _run(fn: Any, **kwargs: Any) -> None:
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.release import ReleaseError, ReleaseFailed

    try:
        with console.status("releasing...", spinner="dots"):
            result = fn(say=_say, **kwargs)
    except ReleaseError as exc:
        raise _fail(f"{exc}; nothing was changed") from exc
    except ReleaseFailed as exc:
        raise _fail(str(exc), 1) from exc
    _show(result)


@app.command("release")
def release(
    stack: Annotated[str, typer.Argument(help="Stack name (acme-dev), or `local`.")],
    model_version: VersionOpt = None,
    dry_run: DryRunOpt = False,
    approved_by: ApproverOpt = None,
    approval_run: RunOpt = None,
    workdir: Annotated[
        Path, typer.Option("--workdir", help="`local` only: work folder of the local loop.")
    ] = LOCAL_WORKDIR,
    port: Annotated[int, typer.Option("--port", help="`local` only: endpoint port.")] = 8080,
    config_stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            help="`local` only: take the model name and rollout settings from this stack config.",
        ),
    ] = None,
    bake_seconds: Annotated[
        float | None,
        typer.Option("--bake-seconds", help="`local` only: seconds each traffic step is watched."),
    ] = None,
    root: RootOpt = None,
) -> None:
    """Release the newest approved (or the given) model version on a stack: pin it, apply,
    wait until healthy, smoke-test, record; roll back on failure."""
    if stack == "local":
        # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
        from mlops import cli_local

        cli_local.release(
            stack="local",
            version=model_version,
            config_stack=config_stack,
            bake_seconds=bake_seconds,
            workdir=workdir,
            port=port,
        )
        return
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from mlops.plan import plan_diff
    from pipelines.release import Approval
    from pipelines.release.orchestrate import release as run_release

    _run(
        run_release,
        stack=stack,
        version=model_version,
        dry_run=dry_run,
        approval=Approval.of(approved_by, approval_run),
        root=root or project_root(),
        planner=plan_diff,
    )


@app.command("promote")
def promote(
    source: Annotated[str, typer.Option("--from", help="Stack the version is approved on.")],
    target: Annotated[str, typer.Option("--to", help="Stack to promote it to.")],
    model_version: VersionOpt = None,
    dry_run: DryRunOpt = False,
    approved_by: ApproverOpt = None,
    approval_run: RunOpt = None,
    root: RootOpt = None,
) -> None:
    """Copy an approved version into the next environment's registry (lineage kept) and
    release it there. A prod target needs --approved-by and --approval-run."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.release import Approval
    from pipelines.release.orchestrate import promote as run_promote

    _run(
        run_promote,
        source=source,
        target=target,
        version=model_version,
        dry_run=dry_run,
        approval=Approval.of(approved_by, approval_run),
        root=root or project_root(),
    )


@app.command("apply")
def apply(
    stack: Annotated[str, typer.Argument(help="Stack name (acme-dev).")],
    dry_run: DryRunOpt = False,
    root: RootOpt = None,
) -> None:
    """`pulumi up` serving the version the registry's release marker names (not an older pin
    in the stack file); every workflow applies through this. Recorded like a release."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.release.orchestrate import apply as run_apply

    _run(run_apply, stack=stack, dry_run=dry_run, root=root or project_root())


@app.command("chain")
def chain(
    stack: Annotated[str, typer.Argument(help="Stack the release starts on (acme-dev).")],
    github_output: Annotated[
        bool, typer.Option("--github-output", help="key=value lines for $GITHUB_OUTPUT.")
    ] = False,
    azure_output: Annotated[
        bool,
        typer.Option("--azure-output", help="Azure DevOps output variables (step name `chain`)."),
    ] = False,
    root: RootOpt = None,
) -> None:
    """The promotion chain from STACK: its blueprint and its dev, staging and prod stacks
    (`mlops:promotion.target`); the release workflows' first job."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.release import ReleaseError
    from pipelines.release.orchestrate import chain as promotion_chain

    try:
        found = promotion_chain(stack, root or project_root())
    except ReleaseError as exc:
        raise _fail(str(exc)) from exc
    for key, value in found.items():
        if github_output:
            sys.stdout.write(f"{key}={value}\n")
        elif azure_output:
            sys.stdout.write(f"##vso[task.setvariable variable={key};isOutput=true]{value}\n")
    if not (github_output or azure_output):
        sys.stdout.write(json.dumps(found) + "\n")


# What a changed path affects: every stack, or the stacks of one blueprint.
_BLUEPRINT_PATHS = {
    "sagemaker": ("components/aws/", "blueprints/sagemaker.py", "pipelines/compilers/sagemaker"),
    "azureml": ("components/azure/", "blueprints/azureml.py", "pipelines/compilers/azureml"),
    "onprem": (
        "components/onprem/",
        "blueprints/onprem.py",
        "pipelines/compilers/argo",
        "blueprints/cluster.py",  # the outputs a client reads from its cluster stack
    ),
    "cluster": ("components/onprem/", "blueprints/cluster.py"),
}
_SHARED_PATHS = (
    "core/",
    "mlops/",
    "blueprints/__init__.py",
    "pipelines/",
    "__main__.py",
    "Pulumi.yaml",
    "pyproject.toml",
    "requirements.lock",
)


def affected_stacks(
    changed: list[str],
    stacks: dict[str, tuple[str, str]],
    cluster_of: Mapping[str, str] | None = None,
) -> list[str]:
    """Stacks whose plan a change can alter. `stacks` maps name -> (blueprint, environment);
    `cluster_of` maps an on-prem client stack to its cluster stack, whose outputs its plan
    reads, so a change to the cluster stack's file affects the client too."""
    hit: set[str] = set()
    specific = tuple(p for paths in _BLUEPRINT_PATHS.values() for p in paths)
    cluster_of = cluster_of or {}
    for path in changed:
        shared = path.startswith(_SHARED_PATHS) and not path.startswith(specific)
        for name, (blueprint, _env) in stacks.items():
            files = {f"Pulumi.{name}.yaml"}
            if name in cluster_of:  # `org/project/stack` names the stack last
                files.add(f"Pulumi.{cluster_of[name].rsplit('/', 1)[-1]}.yaml")
            own = path in files or path.startswith(_BLUEPRINT_PATHS[blueprint])
            if own or shared:
                hit.add(name)
    return sorted(hit)


@app.command("stacks")
def stacks(
    changed_since: Annotated[
        str | None,
        typer.Option("--changed-since", help="Only stacks a change since this git rev affects."),
    ] = None,
    env: Annotated[
        str | None, typer.Option("--env", help="Only stacks of this environment tier.")
    ] = None,
    blueprint: Annotated[
        str | None,
        typer.Option(
            "--blueprint", help="Only stacks of this blueprint (one CI job per platform)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list (CI matrices).")] = False,
) -> None:
    """List the stacks (for CI matrices: `--changed-since origin/main --json`)."""
    root = project_root()
    known, cluster_of = {}, {}
    for name in list_stacks(root):
        settings = load_stack(name, root)
        known[name] = (settings.blueprint, settings.environment)
        if settings.kubernetes.cluster_stack:
            cluster_of[name] = settings.kubernetes.cluster_stack
    names = sorted(known)
    if changed_since:
        diff = subprocess.run(
            # paths relative to the project, as the stack files and blueprint paths are
            ["git", "diff", "--relative", "--name-only", f"{changed_since}...HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if diff.returncode:
            raise _fail(
                f"git cannot diff against {changed_since!r}: {diff.stderr.strip()}; fetch it "
                "first (actions/checkout with fetch-depth: 0)"
            )
        names = affected_stacks(diff.stdout.split(), known, cluster_of)
    if blueprint and blueprint not in _BLUEPRINT_PATHS:
        raise _fail(
            f"--blueprint={blueprint!r} is not one of {', '.join(sorted(_BLUEPRINT_PATHS))}; "
            "pass the blueprint of the stacks the job deploys"
        )
    if env:
        names = [n for n in names if known[n][1] == env]
    if blueprint:
        names = [n for n in names if known[n][0] == blueprint]
    if as_json:  # a GitHub matrix `include` list / Azure DevOps matrix source
        rows = [{"stack": n, "blueprint": known[n][0], "environment": known[n][1]} for n in names]
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    for name in names:
        console.print(f"{name}\t{known[name][0]}\t{known[name][1]}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
