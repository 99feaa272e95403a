"""`mlops demo | release | serve | monitor | report`: the MLOps loop on this machine.

Mounted at the top level of the `mlops` command. Everything listens on 127.0.0.1 only; the
registry is the sqlite file the local pipeline runner writes (no tracking server).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="The MLOps loop on this machine.", no_args_is_help=True, pretty_exceptions_enable=False
)
console = Console()
err = Console(stderr=True)

DEFAULT_WORKDIR = Path(".mlops/local")
WorkdirOpt = Annotated[
    Path,
    typer.Option("--workdir", help="Work folder of the local loop (registry, endpoint, capture)."),
]
PortOpt = Annotated[int, typer.Option("--port", help="Loopback port of the endpoint.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _sigterm_as_interrupt() -> None:
    """SIGTERM runs the same cleanup as Ctrl-C."""

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _settings(stack: str | None) -> Any:
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.definition import PipelineSettings, pipeline_settings_from_stack

    if stack is None:
        return PipelineSettings(client="local"), None
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from core.config import ConfigError, load_stack

    try:
        stack_settings = load_stack(stack)
    except (ConfigError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    return pipeline_settings_from_stack(stack_settings), stack_settings


@app.command("demo")
def demo(
    workdir: Annotated[
        Path,
        typer.Option("--workdir", help="Work folder, reset on each run (the step cache is kept)."),
    ] = Path(".mlops/demo"),
    port: PortOpt = 8080,
    fast: Annotated[
        bool, typer.Option("--fast", help="Less traffic, shorter waits, one permutation repeat.")
    ] = False,
    keep_serving: Annotated[
        bool,
        typer.Option(
            "--keep-serving/--no-keep-serving",
            help="Leave the endpoint running at the end (stop: `mlops serve stop`).",
        ),
    ] = True,
) -> None:
    """The whole loop: train, release, serve, capture, drift, retrain, guarded rollout, report."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.loop.demo import DemoOptions, run_demo

    _sigterm_as_interrupt()
    options = DemoOptions(workdir=workdir, port=port, fast=fast, keep_serving=keep_serving)
    try:
        result = run_demo(options, console)
    except KeyboardInterrupt:
        err.print(
            "[yellow]interrupted[/]: traffic stopped, endpoint and model servers stopped;"
            " the registry holds only completed pipeline runs"
        )
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - the demo's own errors say what went wrong
        raise _fail(f"the demo stopped: {exc}; everything it started was stopped", 1) from exc
    console.print()
    console.print(
        f"[bold green]done[/]: versions {', '.join(map(str, result.versions))}, "
        f"{result.rollout_failed_requests} failed requests during the rollout"
    )
    console.print(f"report:   [bold]{result.report}[/]")
    if result.keep_serving:
        console.print(
            f"endpoint: [bold]{result.endpoint_url}[/] (POST /invocations, GET /ping, "
            "GET /metrics); stop it with `mlops serve stop"
            + (f" --workdir {workdir}`" if workdir else "`")
        )
    if result.rollout_failed_requests:
        raise typer.Exit(1)


@app.command("release")
def release(
    stack: Annotated[str, typer.Argument(help="`local` for this machine's endpoint.")],
    version: Annotated[
        str | None,
        typer.Option("--version", help="Registry version; default the approved champion."),
    ] = None,
    config_stack: Annotated[
        str | None,
        typer.Option(
            "--stack", help="Take the model name and rollout settings from this stack config."
        ),
    ] = None,
    bake_seconds: Annotated[
        float | None,
        typer.Option(
            "--bake-seconds",
            help="Seconds each traffic step is watched (default: the stack's "
            "bake minutes, 0 without --stack).",
        ),
    ] = None,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    port: PortOpt = 8080,
) -> None:
    """Release an approved version: start, health + smoke check, shift traffic, drain old."""
    if stack != "local":
        raise _fail(
            f"this command releases only to the local endpoint (got {stack!r}); release a "
            "stack with `mlops release STACK` (docs/releases.md)"
        )
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.local import default_tracking_uri
    from pipelines.release import ReleaseError
    from pipelines.release.local import RolloutPlan, release_local

    _sigterm_as_interrupt()
    settings, stack_settings = _settings(config_stack)
    try:
        plan = (
            RolloutPlan.from_stack(stack_settings, bake_seconds=bake_seconds)
            if stack_settings
            else RolloutPlan(bake_seconds=bake_seconds or 0.0)
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    tracking_uri = default_tracking_uri(workdir)
    if not (workdir / "mlflow" / "mlflow.db").is_file():
        raise _fail(
            f"no local registry under {workdir}; run the pipeline first "
            f"(`mlops pipeline run`) or pass --workdir"
        )
    try:
        record = release_local(
            workdir=workdir,
            tracking_uri=tracking_uri,
            model_name=settings.registered_model_name,
            version=version,
            plan=plan,
            port=port,
            say=lambda m: console.print(f"  {m}"),
        )
    except ReleaseError as exc:
        raise _fail(str(exc)) from exc
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]: the previous version serves all traffic again")
        raise typer.Exit(130) from None
    colour = {"released": "green", "unchanged": "cyan"}.get(record.outcome, "red")
    console.print(
        f"[{colour}]{record.outcome}[/] version {record.version}: "
        f"{escape(record.reason)} ({record.endpoint})"
    )
    if record.outcome not in ("released", "unchanged"):
        raise typer.Exit(1)


@app.command("serve")
def serve(
    action: Annotated[str, typer.Argument(help="start (foreground), stop or status.")] = "start",
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    port: PortOpt = 8080,
    detach: Annotated[bool, typer.Option("--detach", help="start: run in the background.")] = False,
    capture_percent: Annotated[
        int, typer.Option("--capture-percent", min=0, max=100, help="Share of requests captured.")
    ] = 100,
) -> None:
    """Run the local endpoint (empty until `mlops release local` puts a version in it)."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.serving.endpoint import EndpointError, find_endpoint, start_endpoint

    if action not in ("start", "stop", "status"):
        raise _fail(f"action {action!r} is not one of start, stop, status")
    running = find_endpoint(workdir)
    if action == "stop":
        if running is None:
            console.print(f"no endpoint runs under {workdir}")
            return
        running.stop()
        console.print(f"stopped the endpoint at {running.url} and its model servers")
        return
    if action == "status":
        if running is None:
            raise _fail(f"no endpoint runs under {workdir}; start one with `mlops serve`", 1)
        table = Table(title=f"endpoint {running.url}")
        for col in ("version", "weight", "requests", "4xx", "5xx", "p50 ms", "p99 ms", "pid"):
            table.add_column(col)
        for v, info in running.state()["versions"].items():
            table.add_row(
                v,
                f"{info['weight']:g}",
                str(info["requests"]),
                str(info["errors_4xx"]),
                str(info["errors_5xx"]),
                f"{info['p50_ms']:.1f}",
                f"{info['p99_ms']:.1f}",
                str(info["pid"]),
            )
        console.print(table)
        return
    _sigterm_as_interrupt()
    try:
        endpoint = start_endpoint(
            workdir, port=port, detach=detach, capture_percent=capture_percent
        )
    except EndpointError as exc:
        raise _fail(str(exc)) from exc
    console.print(
        f"endpoint on [bold]{endpoint.url}[/]; release a version into it with "
        f"`mlops release local --workdir {workdir}`"
    )
    if detach:
        console.print(
            f"running in the background (pid {endpoint.pid}); stop it with "
            f"`mlops serve stop --workdir {workdir}`"
        )
        return
    try:
        while endpoint.process is not None and endpoint.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        endpoint.stop()
        console.print("endpoint stopped")


@app.command("monitor")
def monitor(
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack", help="Take the model name and drift threshold from this stack config."
        ),
    ] = None,
    min_rows: Annotated[int, typer.Option("--min-rows", help="Rows needed for a check.")] = 200,
    retrain: Annotated[
        bool, typer.Option("--retrain/--no-retrain", help="On drift, run the pipeline on --data.")
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Labelled batch to retrain on when drift is found."),
    ] = None,
    metrics: Annotated[
        bool, typer.Option("--metrics", help="Print the endpoint's Prometheus metrics.")
    ] = False,
) -> None:
    """Compare captured traffic with the training baseline; on drift alert (and retrain)."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.local import default_tracking_uri, run_local
    from pipelines.loop.monitor import monitor_once
    from pipelines.serving.endpoint import find_endpoint

    settings, _ = _settings(stack)
    if retrain and data is None:
        raise _fail("--retrain needs --data: the labelled batch to train on")
    if metrics:
        running = find_endpoint(workdir)
        if running is None:
            raise _fail(f"no endpoint runs under {workdir}; start one with `mlops serve`", 1)
        typer.echo(running.metrics(), nl=False)  # raw: Prometheus text must not be wrapped
        return
    tracking_uri = default_tracking_uri(workdir)
    check = monitor_once(
        workdir=workdir,
        tracking_uri=tracking_uri,
        model_name=settings.registered_model_name,
        threshold=settings.drift_threshold,
        min_rows=min_rows,
    )
    if check.status == "insufficient":
        console.print(f"{check.rows} captured rows since the last check; need {min_rows}")
        return
    colour = "red" if check.status == "drift" else "green"
    console.print(
        f"[{colour}]{check.status}[/] version {check.version}, {check.rows} rows, "
        f"max PSI {check.max_psi:.3f} (threshold {check.threshold}); "
        f"drifted: {', '.join(check.drifted) or 'none'}"
    )
    if check.status == "drift" and retrain and data is not None:
        empty = workdir / "data" / "no-baseline"
        empty.mkdir(parents=True, exist_ok=True)
        result = run_local(settings, workdir=workdir, data=data, baseline=empty)
        console.print(f"retraining: {result.status}: {result.reason}")


@app.command("report")
def report(
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    stack: Annotated[str | None, typer.Option("--stack")] = None,
) -> None:
    """Write the HTML report of the local loop (versions, plots, drift, releases)."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.local import default_tracking_uri
    from pipelines.loop.report import write_report

    settings, _ = _settings(stack)
    path = write_report(
        workdir=workdir,
        tracking_uri=default_tracking_uri(workdir),
        model_name=settings.registered_model_name,
    )
    console.print(f"report: [bold]{path}[/]")


if __name__ == "__main__":  # pragma: no cover
    app()
