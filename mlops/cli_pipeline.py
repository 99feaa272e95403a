"""`mlops pipeline`: compile the one pipeline definition for a platform, or run it here.

mlops pipeline compile --target sagemaker|azureml|argo --stack acme-dev -o build/
mlops pipeline run --stack acme-dev --target local
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

app = typer.Typer(
    help="Compile the training pipeline for a platform, or run it on this machine.",
    no_args_is_help=True,
)
console = Console(stderr=True)


class Target(StrEnum):
    sagemaker = "sagemaker"
    azureml = "azureml"
    argo = "argo"


class RunTarget(StrEnum):
    local = "local"


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def load_stack_settings(stack: str) -> Any:
    """The validated StackSettings of `stack` (Pulumi.<stack>.yaml), or a readable exit."""
    try:
        # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
        from core.config import load_stack
    except ImportError as exc:  # the config module is the lead's; say so plainly
        raise _fail(
            f"core.config.load_stack is not available ({exc}); "
            "pass --stack once the config schema is installed"
        ) from exc
    try:
        return load_stack(stack)
    except FileNotFoundError as exc:
        raise _fail(
            f"no stack file for {stack!r} ({exc}); create Pulumi.{stack}.yaml or pick "
            "one with `mlops stacks`"
        ) from exc
    except ValueError as exc:  # ConfigError lists each bad key and its fix
        raise _fail(str(exc)) from exc


def _settings(stack: str, image: str | None) -> tuple[Any, Any]:
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.definition import SettingsError, pipeline_settings_from_stack

    stack_settings = load_stack_settings(stack)
    overrides = {"image_uri": image} if image else {}
    try:
        return stack_settings, pipeline_settings_from_stack(stack_settings, **overrides)
    except SettingsError as exc:
        raise _fail(str(exc)) from exc


def _prefix(stack_settings: Any, stack: str) -> str:
    return str(getattr(stack_settings, "prefix", None) or stack)


@app.command("compile")
def compile_(
    target: Annotated[Target, typer.Option("--target", help="Platform to compile for.")],
    stack: Annotated[str, typer.Option("--stack", help="Stack (reads Pulumi.<stack>.yaml).")],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="Directory to write into (a sub-folder per target)."),
    ] = Path("build/pipelines"),
    image: Annotated[
        str | None, typer.Option(help="Pipeline image; default from the settings.")
    ] = None,
    role_arn: Annotated[
        str | None, typer.Option(help="SageMaker: pipeline execution role ARN.")
    ] = None,
    bucket: Annotated[str | None, typer.Option(help="SageMaker/Argo: artifact bucket.")] = None,
    region: Annotated[
        str | None, typer.Option(help="SageMaker: region; default the stack's.")
    ] = None,
    compute: Annotated[str, typer.Option(help="Azure ML: compute cluster name.")] = "cpu-cluster",
    namespace: Annotated[
        str | None, typer.Option(help="Argo: namespace; default <prefix>-ml.")
    ] = None,
    mlflow_uri: Annotated[
        str, typer.Option(help="Argo: MLflow tracking URI the register step writes to.")
    ] = "http://mlflow.mlflow.svc:5000",
) -> None:
    """Write what the platform component consumes: SageMaker definition JSON, Azure ML job
    YAML (plus component specs), or an Argo WorkflowTemplate YAML."""
    stack_settings, settings = _settings(stack, image)
    prefix = _prefix(stack_settings, stack)
    out = output / target.value
    out.mkdir(parents=True, exist_ok=True)
    with console.status(f"compiling for {target.value}"):
        if target is Target.sagemaker:
            # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
            from pipelines.compilers.sagemaker import compile_sagemaker

            stack_region = region or getattr(stack_settings, "region", None) or "us-east-1"
            text = compile_sagemaker(
                settings,
                pipeline_name=f"{prefix}-training",
                role_arn=role_arn or f"arn:aws:iam::000000000000:role/{prefix}-pipeline",
                bucket=bucket or f"{prefix}-artifacts",
                region=stack_region,
                model_package_group=f"{prefix}-models",
            )
            path = out / "pipeline.json"
            path.write_text(json.dumps(json.loads(text), indent=2) + "\n")
        elif target is Target.azureml:
            # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
            from pipelines.compilers.azureml import azureml_component_specs, compile_azureml

            _, job = compile_azureml(
                settings,
                compute=compute,
                experiment_name=f"{prefix}-training",
                environment_image=settings.image_uri,
            )
            path = out / "pipeline_job.yaml"
            path.write_text(yaml.safe_dump(job, sort_keys=False))
            specs = azureml_component_specs(settings, environment_image=settings.image_uri)
            (out / "components.json").write_text(json.dumps(specs, indent=2) + "\n")
        else:
            # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
            from pipelines.compilers.argo import compile_argo

            manifest = compile_argo(
                settings,
                namespace=namespace or f"{prefix}-ml",
                image=settings.image_uri,
                mlflow_tracking_uri=mlflow_uri,
                service_account=f"{prefix}-pipeline",
                artifact_bucket=bucket or f"{prefix}-artifacts",
                name=f"{prefix}-training",
            )
            path = out / "workflow_template.yaml"
            path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    console.print(f"[green]wrote[/] {path}")


@app.command("run")
def run(
    stack: Annotated[str, typer.Option("--stack", help="Stack (reads Pulumi.<stack>.yaml).")],
    target: Annotated[
        RunTarget, typer.Option("--target", help="Only 'local' runs here.")
    ] = RunTarget.local,
    workdir: Annotated[Path, typer.Option(help="Cache, runs and MLflow registry.")] = Path(
        ".mlops/local"
    ),
    data: Annotated[
        Path | None, typer.Option(help="CSV/Parquet batch; default the example set.")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow URI; default sqlite in workdir.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Run every step again.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Run validate-data -> prepare -> train -> evaluate -> quality-gate -> register here."""
    # lazy: a command imports what it runs, so `mlops --help` and `validate` stay fast
    from pipelines.local import run_local

    _, settings = _settings(stack, None)
    result = run_local(
        settings,
        workdir=workdir,
        data=data,
        progress=progress,
        tracking_uri=tracking_uri,
        use_cache=not no_cache,
    )
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    if metrics:
        console.print(f"metrics: {metrics}")
    console.print(
        f"ran: {', '.join(result.ran) or '-'}; from cache: {', '.join(result.cached) or '-'}"
    )
    console.print(f"artifacts: {result.run_dir}")
    colour = {"registered": "green", "not-registered": "yellow"}.get(result.status, "red")
    console.print(f"[{colour}]{result.status}[/]: {result.reason}")
    if result.status == "failed":
        raise typer.Exit(1)
