"""`mlops batch score | export | catalog`: serving beyond the real-time endpoint.

Mounted at the top level of the `mlops` command:

    mlops batch score --stack acme-dev --input in.parquet --output out.parquet
    mlops export --model-version 3 --format onnx -o model.onnx
    mlops catalog [--json] [--html catalog.html]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="Batch scoring, edge export and the catalog of models in production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
batch_app = typer.Typer(
    help="Batch scoring with the registered champion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(batch_app, name="batch")
console = Console()
err = Console(stderr=True)

DEFAULT_WORKDIR = Path(".mlops/local")
FORMATS = ("onnx",)
WorkdirOpt = Annotated[
    Path, typer.Option("--workdir", help="Folder of the local loop holding the MLflow registry.")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _stack(stack: str | None) -> tuple[object, object | None]:
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.definition import PipelineSettings, pipeline_settings_from_stack

    if stack is None:
        return PipelineSettings(client="local"), None
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from core.config import ConfigError, load_stack

    try:
        settings = load_stack(stack)
    except (ConfigError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    return pipeline_settings_from_stack(settings), settings


def _registry(workdir: Path) -> str:
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.local import default_tracking_uri

    if not (workdir / "mlflow" / "mlflow.db").is_file():
        raise _fail(
            f"no local registry under {workdir}; run the pipeline first "
            "(`mlops pipeline run --stack STACK --target local`) or pass --workdir"
        )
    return default_tracking_uri(workdir)


@batch_app.command("score")
def score(
    stack: Annotated[str, typer.Option("--stack", help="Stack whose model and batch settings.")],
    input_path: Annotated[Path, typer.Option("--input", help="CSV or Parquet file to score.")],
    output: Annotated[Path, typer.Option("--output", help="Predictions: .csv or .parquet.")],
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Bad rows with reasons (default <output>.rejects.csv)."),
    ] = None,
    chunk_rows: Annotated[
        int | None,
        typer.Option("--chunk-rows", min=1, help="Rows per chunk (default batch.chunkRows)."),
    ] = None,
    version: Annotated[
        str | None, typer.Option("--model-version", help="Registry version; default champion.")
    ] = None,
    keep: Annotated[
        list[str] | None, typer.Option("--keep", help="Input column copied to the output.")
    ] = None,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Score a file in chunks with bounded memory; bad rows go to the rejects file."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.batch import BatchError, load_model, score_file

    settings, stack_settings = _stack(stack)
    rows = chunk_rows or stack_settings.batch.chunk_rows
    tracking_uri = _registry(workdir)
    try:
        model = load_model(
            tracking_uri, settings.registered_model_name, version, contract=settings.contract
        )
        result = score_file(
            model,
            input_path,
            output,
            chunk_rows=rows,
            rejects=rejects,
            keep=tuple(keep or ()),
            progress=not as_json and sys.stderr.isatty(),
        )
    except BatchError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    console.print(
        f"[green]scored[/] {result.rows_scored:,} of {result.rows_in:,} rows with "
        f"{model.name} version {model.version} in {result.chunks} chunk(s) of <= {rows:,} "
        f"-> [bold]{escape(result.output)}[/]"
    )
    if result.rows_rejected:
        detail = ", ".join(f"{k} x{n}" for k, n in sorted(result.reasons.items()))
        console.print(
            f"[yellow]rejected[/] {result.rows_rejected:,} rows -> "
            f"[bold]{escape(result.rejects)}[/] ({escape(detail)})"
        )


@app.command("export")
def export(
    model_version: Annotated[str, typer.Option("--model-version", help="Registry version.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="Edge format: onnx.")] = "onnx",
    stack: Annotated[str | None, typer.Option("--stack", help="Take the model name.")] = None,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
) -> None:
    """Write the edge export stored with a registered version (refused if not exportable)."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.steps.onnx_parity import NotExportable, fetch_onnx

    if fmt not in FORMATS:
        raise _fail(f"--format {fmt!r} is not one of {', '.join(FORMATS)}; use --format onnx")
    settings, _ = _stack(stack)
    tracking_uri = _registry(workdir)
    try:
        path = fetch_onnx(tracking_uri, settings.registered_model_name, model_version, output)
    except NotExportable as exc:
        raise _fail(str(exc), code=1) from exc
    console.print(
        f"wrote {settings.registered_model_name} version {model_version} as ONNX to "
        f"[bold]{escape(str(path))}[/] (input 'input' float32, output 'probabilities')"
    )


@app.command("catalog")
def catalog(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the catalog as an HTML page.")
    ] = None,
    stacks: Annotated[
        list[str] | None, typer.Option("--stack", help="Only these stacks (repeatable).")
    ] = None,
    mlflow: Annotated[
        list[str] | None,
        typer.Option("--mlflow", help="STACK=URI: the MLflow registry of an on-prem stack."),
    ] = None,
    azure_subscription: Annotated[
        str | None,
        typer.Option("--azure-subscription", help="Default: $AZURE_SUBSCRIPTION_ID."),
    ] = None,
    workdir: WorkdirOpt = DEFAULT_WORKDIR,
) -> None:
    """Models in production: per stack and endpoint, version, lineage, release and drift."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from core.config import PROJECT_ROOT
    from mlops.catalog import CatalogSources, build_catalog, to_html, to_json

    uris = {}
    for item in mlflow or []:
        stack, sep, uri = item.partition("=")
        if not sep or not uri:
            raise _fail(f"--mlflow {item!r} is not STACK=URI; e.g. --mlflow globex-prod=https://…")
        uris[stack] = uri
    sources = CatalogSources(
        root=PROJECT_ROOT,
        stacks=tuple(stacks or ()),
        releases_dir=Path(".mlops/releases"),
        local_workdir=workdir,
        tracking_uris=uris,
        azure_subscription=azure_subscription or os.environ.get("AZURE_SUBSCRIPTION_ID"),
    )
    entries = build_catalog(sources)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(to_html(entries), encoding="utf-8")
    if as_json:
        sys.stdout.write(to_json(entries) + "\n")
        return
    table = Table(title="Models in production")
    for col in ("stack", "endpoint", "serving", "traffic", "data / code", "metric", "release"):
        table.add_column(col)
    table.add_column("drift")
    for e in entries:
        serving = f"[red]{escape(e.error)}[/]" if e.error else escape(e.version or e.status)
        release = e.last_release or {}
        metric = next(iter(sorted(e.metrics.items())), None)
        drift = e.drift.get("status", "unknown")
        colour = {"drift": "red", "ok": "green"}.get(drift, "dim")
        table.add_row(
            f"{e.stack}\n[dim]{e.blueprint}[/]",
            escape(e.endpoint),
            serving + (f"\n[dim]pinned {e.pinned}[/]" if e.pinned else ""),
            ", ".join(f"v{v} {p}%" for v, p in e.traffic.items()),
            escape(
                f"{e.lineage.get('data_hash', '')[:12]} / {e.lineage.get('code_version', '')[:12]}"
            ),
            f"{metric[0]} {metric[1]:.3f}" if metric else "",
            escape(f"{release.get('version', '')} {release.get('outcome', '')}".strip()),
            f"[{colour}]{drift}[/]",
        )
    console.print(table)
    if html is not None:
        console.print(f"HTML: [bold]{escape(str(html))}[/]")
