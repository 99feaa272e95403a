"""`mlops`: the kit's command-line tool."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

import blueprints
from core.config import (
    PROJECT_ROOT,
    ConfigError,
    Environment,
    cluster_config,
    component_error,
    list_stacks,
    load_stack,
    project_root,
    stack_file,
    tier_config,
    validate_settings,
)
from core.contract import Capability
from core.errors import ArgsError

app = typer.Typer(
    help="MLOps blueprint kit: validate stacks, plan them offline, run pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

_STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "n/a": "dim",
    "waived": "yellow",
    "suppressed": "yellow",
}

app.add_typer(importlib.import_module("mlops.cli_pipeline").app, name="pipeline")


def _mount(module: str) -> None:
    """Add a sub-app's commands at top level; the first module to name a command keeps it."""
    try:
        sub = importlib.import_module(module).app
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return
    taken = {c.name for c in app.registered_commands}
    app.registered_commands.extend(c for c in sub.registered_commands if c.name not in taken)
    app.registered_groups.extend(g for g in sub.registered_groups if g.name not in taken)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


@app.command("blueprints")
def list_blueprints(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the blueprints and which service gives each capability of the contract."""
    modules = [blueprints.get(n) for n in blueprints.NAMES]
    if as_json:
        data = {
            m.NAME: {
                "platform": m.PLATFORM,
                "title": m.TITLE,
                # a cluster stack gives no capability itself: its client stacks do
                "capabilities": {c.value: m.CAPABILITIES.get(c) for c in m.CAPABILITIES},
            }
            for m in modules
        }
        console.print_json(json.dumps(data))
        return
    shared = [m for m in modules if not m.CAPABILITIES]
    modules = [m for m in modules if m.CAPABILITIES]
    table = Table(title="Blueprints and their capabilities", show_lines=False)
    table.add_column("capability", style="bold")
    for m in modules:
        table.add_column(f"{m.NAME}\n[dim]{m.TITLE}[/]")
    for cap in Capability:
        table.add_row(cap.value, *[m.CAPABILITIES.get(cap, "[dim]-[/]") for m in modules])
    console.print(table)
    for m in shared:
        console.print(f"[bold]{m.NAME}[/]: {m.TITLE} (no capability itself; docs/blueprints)")


@app.command("new")
def new_stack(
    client: Annotated[str, typer.Argument(help="Client name: lowercase letters and digits.")],
    blueprint: Annotated[
        str, typer.Option("--blueprint", "-b", help="sagemaker|azureml|onprem|cluster")
    ],
    env: Annotated[str, typer.Option("--env", "-e", help="dev|staging|prod")],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Where to write the file (default: the project, the nearest folder with a "
            "Pulumi.yaml, where `validate` and `plan` read stacks).",
        ),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="The kit image, repo:tag@sha256:digest.")
    ] = None,
) -> None:
    """Write Pulumi.<client>-<env>.yaml from the tier defaults (never overwrites); with
    `--blueprint cluster`, Pulumi.<client>-cluster.yaml, the shared cluster layer its on-prem
    stacks (`kubernetes.clusterStack`) run on, following the `--env` tier's rules."""
    stack = f"{client}-cluster" if blueprint == "cluster" else f"{client}-{env}"
    config_values: dict[str, Any] = {
        "mlops:blueprint": blueprint,
        "mlops:client": client,
        "mlops:environment": env,
    }
    if blueprint == "onprem":
        config_values["mlops:kubernetes"] = {"clusterStack": f"{client}-cluster"}
    if blueprint == "cluster" and env in get_args(Environment):
        config_values = cluster_config(client, env)
    if image:
        config_values["mlops:image"] = image
    try:
        validate_settings(config_values, stack=stack)
    except ConfigError as exc:
        # prod needs a digest-pinned image; without --image the file says where it goes
        problems = [p for p in exc.problems if not (p.key == "image" and image is None)]
        if problems:
            raise _fail(str(ConfigError(stack, problems))) from exc
    path = stack_file(stack, directory or project_root())
    if path.exists():
        raise _fail(f"{path} already exists; edit it, or delete it first to start over")
    config = (
        cluster_config(client, env)
        if blueprint == "cluster"
        else tier_config(client, blueprint, env)
    )
    if image:
        config["mlops:image"] = image
    header = (
        f"# {client}, {env}: blueprint {blueprint}. Written by `mlops new` from the {env} tier\n"
        "# defaults; every key is described in docs/config.md. mlops:model picks the version\n"
        "# to serve.\n"
    )
    footer = ""
    if env == "prod" and not image:
        footer = (
            "  # Required in prod: the CI-built kit image pinned by digest.\n"
            "  # mlops:image: <registry>/<repository>:<tag>@sha256:<digest>\n"
        )
    path.write_text(header + yaml.safe_dump({"config": config}, sort_keys=False) + footer)
    console.print(f"wrote [bold]{escape(str(path))}[/]; check it with `mlops validate {stack}`")
    if footer:
        console.print("[yellow]prod needs mlops:image pinned by digest before `pulumi up`[/]")


@app.command("validate")
def validate(stack: Annotated[str, typer.Argument(help="Stack name, e.g. acme-dev.")]) -> None:
    """Validate a stack config and report every problem at once."""
    try:
        settings = load_stack(stack, project_root())
    except (ConfigError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"[green]ok[/] {stack}: blueprint {settings.blueprint}, "
        f"environment {settings.environment}, model {settings.model or 'unset'}"
    )


def _tree(plan: Any) -> Tree:
    root = Tree(f"[bold]{plan.stack}[/] ({plan.settings.blueprint}, {len(plan.records)} resources)")
    nodes: dict[str, Tree] = {}
    for record in plan.records:
        label = f"{record.name} [dim]{record.type}[/]"
        if record.options.get("protect"):
            label += " [yellow]protected[/]"
        parent = nodes.get(record.parent, root)
        nodes[record.urn] = parent.add(label if record.custom else f"[bold cyan]{label}[/]")
    return root


def _parse_sets(values: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise _fail(f"--set {item!r} is not KEY=VALUE; for example --set model=3")
        overrides[key] = yaml.safe_load(value)
    return overrides


@app.command("plan")
def plan(
    stack: Annotated[str, typer.Argument(help="Stack name, e.g. acme-prod.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key: --set model=3, --set gate.minimum=0.95"),
    ] = None,
) -> None:
    """Run the program offline under recording mocks: resource tree, capabilities, controls.

    Exits 1 when a control fails or a capability has no resource."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from mlops.plan import OFFLINE_NOTE, run_plan

    try:
        result = run_plan(stack, root=project_root(), overrides=_parse_sets(sets or []))
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from exc
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    except ArgsError as exc:
        raise _fail(component_error(stack, exc)) from exc
    failed = bool(result.failed_controls or result.missing_capabilities)
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2, default=str) + "\n")
        raise typer.Exit(1 if failed else 0)
    console.print(f"[italic]{OFFLINE_NOTE}[/]")
    console.print(_tree(result))
    caps = Table(title="Capabilities (resources that give each)")
    caps.add_column("capability")
    caps.add_column("resources", justify="right")
    off = result.capabilities_off
    for cap, count in result.capabilities.items():
        shown = str(count)
        if not count:
            shown = (
                f"[dim]0, off: {escape(off[cap])}[/]" if cap in off else "[bold red]0 missing[/]"
            )
        caps.add_row(cap, shown)
    console.print(caps)
    table = Table(title="Controls")
    for col in ("id", "status", "title", "detail"):
        table.add_column(col)
    for f in result.findings:
        detail = escape("; ".join(f.failures) or f.note)
        style = _STATUS_STYLE[f.status]
        table.add_row(f.control.id, f"[{style}]{f.status}[/]", f.control.title, detail)
    console.print(table)
    counts = {s: sum(1 for f in result.findings if f.status == s) for s in _STATUS_STYLE}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    console.print(f"{len(result.records)} resources; controls: {summary or 'none'}")
    if failed:
        raise typer.Exit(1)


@app.command("docs")
def docs(
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the generated docs are stale.")
    ] = False,
) -> None:
    """Regenerate docs/config.md, docs/controls.md, docs/contract.md and docs/blueprints/*.md."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from mlops import docs as docs_mod

    stale = docs_mod.write_all(PROJECT_ROOT, check=check)
    if check and stale:
        raise _fail("stale generated docs: " + ", ".join(stale) + "; run `mlops docs`", code=1)
    verb = "stale" if check else "written"
    console.print(f"{len(stale)} file(s) {verb}" + (": " + ", ".join(stale) if stale else ""))


@app.command("compile")
def compile_(
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 1 if a compiled pipeline definition is stale."),
    ] = False,
) -> None:
    """Compile every example stack's pipeline definitions into compiled/ (the plan's fast path)."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from mlops.compiled import compile_all

    report = compile_all(project_root(), check=check)
    if check and (report.stale or report.unused):
        problems = [f"{s} (stale or missing)" for s in report.stale]
        problems += [f"{u} (no example stack uses it)" for u in report.unused]
        raise _fail(
            "compiled pipeline definitions out of date: "
            + "; ".join(problems)
            + "; run `mlops compile` and commit compiled/",
            code=1,
        )
    if check:
        console.print(f"{len(report.used)} compiled definition(s) current")
    else:
        console.print(
            f"{len(report.stale)} compiled, {len(report.used) - len(report.stale)} current, "
            f"{len(report.unused)} removed, in compiled/"
        )


def _plan_row(stack: str, root: Path) -> tuple[list[str], str | None]:
    """One row of `mlops plans` and, for a stack that did not pass, why (errors are returned
    as text: they need not pickle)."""
    from mlops.plan import run_plan

    try:
        settings = load_stack(stack, root)
        result = run_plan(stack, root=root)
    except ConfigError as exc:
        return [stack, "-", "-", "-", "-", "[bold red]config error[/]"], str(exc)
    except ArgsError as exc:
        return [stack, "-", "-", "-", "-", "[bold red]config error[/]"], component_error(stack, exc)
    passed = sum(1 for f in result.findings if f.status == "pass")
    failed = [f.control.id for f in result.failed_controls]
    given = sum(1 for n in result.capabilities.values() if n)
    row = [
        stack,
        settings.blueprint,
        str(len(result.records)),
        # a cluster stack gives none itself: its client stacks do
        "shared layer"
        if settings.blueprint == "cluster"
        else f"{given}/{len(result.capabilities)}",
        f"{passed} pass, {len(failed)} fail",
    ]
    if not (failed or result.missing_capabilities):
        return [*row, "[green]ok[/]"], None
    why = ", ".join([*failed, *(f"no {c}" for c in result.missing_capabilities)])
    return [*row, "[bold red]failed[/]"], f"{stack}: {why} (`mlops plan {stack}` for details)"


def _plan_rows(stacks: list[str], root: Path) -> dict[str, tuple[list[str], str | None]]:
    """`_plan_row` of each stack, in one worker process."""
    return {stack: _plan_row(stack, root) for stack in stacks}


def _by_platform(stacks: list[str], root: Path) -> list[list[str]]:
    """The stacks grouped by the provider they use, so that a worker imports one provider's
    modules (the larger part of a plan) rather than all of them."""
    from core.config import read_stack_file
    from core.controls import PLATFORM_OF_BLUEPRINT

    groups: dict[str, list[str]] = {}
    for stack in stacks:
        try:
            blueprint = read_stack_file(stack_file(stack, root))[0].get("mlops:blueprint")
        except (OSError, ValueError, yaml.YAMLError):
            blueprint = None  # _plan_row reports it
        groups.setdefault(PLATFORM_OF_BLUEPRINT.get(str(blueprint), "?"), []).append(stack)
    return list(groups.values())


@app.command("plans")
def plans(
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Stacks planned at once, each in its own process (default: one per CPU).",
        ),
    ] = None,
) -> None:
    """The offline plan of every example stack: resources, capabilities and controls."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from rich.progress import Progress

    root = project_root()
    stacks = list_stacks(root)
    workers = min(jobs or os.cpu_count() or 1, len(stacks)) or 1
    table = Table(title="Offline plan of every example stack")
    for col in ("stack", "blueprint", "resources", "capabilities", "controls", "result"):
        table.add_column(col)
    # stacks run in worker processes, one provider's stacks per worker, started fresh (spawn):
    # a forked child of a threaded parent (a test runner, an IDE) can deadlock
    context = multiprocessing.get_context("spawn")
    rows: dict[str, tuple[list[str], str | None]] = {}
    with (
        ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
        Progress(console=err, transient=True) as progress,
    ):
        task = progress.add_task(f"planning {len(stacks)} stacks", total=len(stacks))
        futures = [pool.submit(_plan_rows, group, root) for group in _by_platform(stacks, root)]
        for future in as_completed(futures):
            done = future.result()
            rows.update(done)
            progress.advance(task, len(done))
    for stack in stacks:
        table.add_row(*rows[stack][0])
    console.print(table)
    problems = [why for _, why in (rows[stack] for stack in stacks) if why]
    for why in problems:
        err.print(escape(why))
    console.print("Next: `mlops plan <stack>` for the resource tree and every control.")
    if problems:
        raise typer.Exit(1)


# release/promote (CI-driven releases; `release local` delegates to the local loop), the
# local loop (demo, serve, monitor, report), and the other serving modes (batch, export,
# catalog).
for _module in ("mlops.cli_release", "mlops.cli_local", "mlops.cli_serving"):
    _mount(_module)


if __name__ == "__main__":  # pragma: no cover
    app()
