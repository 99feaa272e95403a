"""Run the pipeline on this machine: the same step entry points, in-process, with step caching.

    result = run_local(PipelineSettings(), workdir=Path(".mlops/local"))

Layout under `workdir`:

    cache/<step>/<key>/<output>/   outputs of a finished step; key = hash(code, inputs, params)
    runs/<run id>/run.json         what ran, what came from the cache, metrics, gate, version
    runs/<run id>/logs/<step>.log  each step's stdout and stderr
    runs/<run id>/<step>/<output>/ outputs of a step that failed, and of the register step
    mlflow/mlflow.db, mlflow/artifacts/   the local MLflow registry (sqlite, no server)
    data/breast_cancer.csv         the example batch, when no data is given

A step whose key is in the cache is not run again; its cached outputs feed the next step.
Steps run in this process, one after another, inside `run_memo()`: a table one step wrote or
read (the batch, the Parquet splits) is handed to the next step in memory, and each file is
hashed once for both the cache keys and the lineage.
The register step always runs (it is cheap and has a side effect) and reuses an existing
version when the same model folder was registered before.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.definition import (
    PIPELINE,
    PipelineSettings,
    Step,
    parameter_defaults,
    step_arguments,
    validate_settings,
)
from pipelines.steps._common import hash_path, run_memo

CACHE_VERSION = "1"
STEPS_DIR = Path(__file__).resolve().parent / "steps"
EXTRA_CODE = {
    "validate-data": ("stats.py",),
    "prepare": ("stats.py",),
    "evaluate": ("../explain.py",),
}


@dataclass
class StepRecord:
    """What happened to one step in a run."""

    name: str
    status: str
    """'ran', 'cached', 'skipped' or 'failed'."""
    key: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    message: str = ""


@dataclass
class RunResult:
    """The outcome of `run_local`: steps run vs. cached, artifacts, metrics, gate, version."""

    run_id: str
    status: str
    """'registered', 'not-registered' (gate failed) or 'failed' (a step stopped the run)."""
    reason: str
    steps: list[StepRecord]
    run_dir: Path
    tracking_uri: str
    model_name: str
    metrics: dict[str, float] = field(default_factory=dict)
    gate: dict[str, Any] | None = None
    validation: dict[str, Any] | None = None
    registered_version: int | None = None
    registration: dict[str, Any] | None = None

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "ran"]

    @property
    def cached(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "cached"]

    def step(self, name: str) -> StepRecord:
        return next(s for s in self.steps if s.name == name)

    def artifact(self, step: str, output: str) -> Path:
        return Path(self.step(step).outputs[output])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["run_dir"] = str(self.run_dir)
        return out


class StepFailed(RuntimeError):
    def __init__(self, step: str, message: str, record: StepRecord):
        super().__init__(f"{step}: {message}")
        self.step, self.message, self.record = step, message, record


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # noqa: F401 - configures its loggers on import; quieten them afterwards

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def default_tracking_uri(workdir: Path) -> str:
    return f"sqlite:///{(Path(workdir) / 'mlflow' / 'mlflow.db').resolve()}"


def _code_hash(step: Step, settings: PipelineSettings) -> str:
    module_file = STEPS_DIR / (step.module.rsplit(".", 1)[1] + ".py")
    files = [
        module_file,
        STEPS_DIR / "_common.py",
        *(STEPS_DIR / extra for extra in EXTRA_CODE.get(step.name, ())),
    ]
    if step.name == "train":
        spec = importlib.util.find_spec(settings.trainer.split(":", 1)[0])
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            files.append(Path(spec.origin))
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _cache_key(
    step: Step, settings: PipelineSettings, inputs: dict[str, Path], params: dict[str, Any]
) -> str:
    material = {
        "version": CACHE_VERSION,
        "step": step.name,
        "code": _code_hash(step, settings),
        "inputs": {
            inp.name: hash_path(inputs[inp.name])
            for inp in step.inputs
            if inp.name in inputs and not inp.order_only
        },
        "params": {name: params[name] for name in step.params},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]


def _run_module(module: str, argv: list[str], log: Path) -> tuple[int, str]:
    """Run `module.main(argv)` in-process, capturing its output to `log`."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            code = importlib.import_module(module).main(argv)
        except SystemExit as exc:  # argparse errors
            code = exc.code if isinstance(exc.code, int) else 2
    text = buffer.getvalue()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(text)
    return int(code or 0), text


def _registry_exists(tracking_uri: str) -> bool:
    """False for a sqlite registry whose file is not there yet (nothing registered, and no
    reason to create the database just to find that out)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).is_file()
    return True


def champion(tracking_uri: str, model_name: str, metric: str) -> dict[str, Any] | None:
    """The version under the 'champion' alias, its gate metric and its run id; None if none."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, "champion")
    except MlflowException:
        return None
    run = client.get_run(version.run_id)
    return {
        "version": int(version.version),
        "run_id": version.run_id,
        "metric": run.data.metrics.get(metric),
    }


def champion_baseline(tracking_uri: str, run_id: str, dest: Path) -> Path | None:
    """Download the champion's baseline.json (statistics of its training data) to `dest`."""
    import mlflow.artifacts

    try:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="baseline", dst_path=str(dest), tracking_uri=tracking_uri
        )
    except Exception:  # noqa: BLE001 - an older champion may have no baseline
        return None
    path = Path(local)
    return path if (path / "baseline.json").is_file() else None


class _Progress:
    """Rich progress over the steps, or nothing when progress is off."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            self.task = self.progress.add_task("pipeline", total=total)

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def start(self, step: str) -> None:
        if self.enabled:
            self.progress.update(self.task, description=f"[bold]{step}[/] running")

    def done(self, record: StepRecord) -> None:
        if self.enabled:
            colour = {"ran": "green", "cached": "cyan", "skipped": "yellow"}.get(
                record.status, "red"
            )
            self.progress.console.print(
                f"[{colour}]{record.status:>7}[/] {record.name:<14} {record.seconds:6.2f}s "
                f"{record.message}"
            )
            self.progress.advance(self.task)


def run_local(
    settings: PipelineSettings,
    *,
    workdir: Path,
    data: Path | None = None,
    progress: bool = True,
    tracking_uri: str | None = None,
    baseline: Path | None = None,
    use_cache: bool = True,
    run_id: str | None = None,
) -> RunResult:
    """Run every step of the one definition on this machine and register into MLflow.

    `data` defaults to the packaged breast cancer set; `tracking_uri` to a sqlite registry under
    `workdir`; `baseline` (a folder with baseline.json) to the champion's training statistics.
    """
    validate_settings(settings)
    workdir = Path(workdir).resolve()
    run_id = run_id or f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_dir = workdir / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    tracking_uri = tracking_uri or default_tracking_uri(workdir)
    (workdir / "mlflow").mkdir(parents=True, exist_ok=True)
    _quiet_mlflow()

    if data is None:
        # lazy: pandera (about 2.5 s) only when the example data has to be written
        from pipelines.data import write_example

        data = workdir / "data" / "breast_cancer.csv"
        if not data.is_file():
            write_example(data)
    data = Path(data).resolve()
    if not data.exists():
        raise FileNotFoundError(f"data {data} does not exist; pass a CSV/Parquet file or folder")

    current = (
        champion(tracking_uri, settings.registered_model_name, settings.gate_metric)
        if _registry_exists(tracking_uri)
        else None
    )
    if baseline is None and current is not None:
        baseline = champion_baseline(tracking_uri, current["run_id"], run_dir / "champion")
    params = parameter_defaults(
        settings, data_uri=str(data), baseline_uri=str(baseline) if baseline else ""
    )
    if current is not None and current.get("metric") is not None:
        params["champion_metric"] = float(current["metric"])

    outputs: dict[str, dict[str, Path]] = {}
    records: list[StepRecord] = []
    result = RunResult(
        run_id=run_id,
        status="failed",
        reason="",
        steps=records,
        run_dir=run_dir,
        tracking_uri=tracking_uri,
        model_name=settings.registered_model_name,
    )

    with _Progress(progress, len(PIPELINE)) as bar, run_memo():
        for step in PIPELINE:
            bar.start(step.name)
            if step.kind == "register" and not _read(
                outputs, "quality-gate", "gate", "gate.json"
            ).get("passed"):
                record = StepRecord(step.name, "skipped", message="quality gate failed")
                records.append(record)
                bar.done(record)
                break
            try:
                record = _run_step(
                    step, settings, params, outputs, workdir, run_dir, tracking_uri, use_cache
                )
            except StepFailed as exc:
                records.append(exc.record)
                bar.done(exc.record)
                result.reason = str(exc)
                break
            records.append(record)
            bar.done(record)

    result.validation = _read(outputs, "validate-data", "report", "report.json") or None
    failed_report = run_dir / "validate-data" / "report" / "report.json"
    if result.validation is None and failed_report.is_file():
        result.validation = json.loads(failed_report.read_text())
    evaluation = _read(outputs, "evaluate", "evaluation", "evaluation.json")
    result.metrics = evaluation.get("metrics", {})
    result.gate = _read(outputs, "quality-gate", "gate", "gate.json") or None
    registration = _read(outputs, "register", "registration", "registration.json")
    if registration:
        result.registration = registration
        result.registered_version = registration.get("version")
        result.status = "registered" if registration.get("registered") else "not-registered"
        result.reason = (
            f"{result.model_name} version {result.registered_version} "
            f"({registration.get('approval_status')})"
            if registration.get("registered")
            else registration.get("reason", "")
        )
    elif result.gate is not None and not result.gate.get("passed"):
        result.status = "not-registered"
        result.reason = "quality gate failed: " + "; ".join(result.gate.get("reasons", []))
    (run_dir / "run.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return result


def _read(outputs: dict[str, dict[str, Path]], step: str, output: str, name: str) -> dict:
    path = outputs.get(step, {}).get(output)
    if path is None or not (path / name).is_file():
        return {}
    return json.loads((path / name).read_text())


def _run_step(
    step: Step,
    settings: PipelineSettings,
    params: dict[str, Any],
    outputs: dict[str, dict[str, Path]],
    workdir: Path,
    run_dir: Path,
    tracking_uri: str,
    use_cache: bool,
) -> StepRecord:
    inputs: dict[str, Path] = {}
    for inp in step.inputs:
        if inp.from_param is not None:
            value = params[inp.from_param]
            if value:
                inputs[inp.name] = Path(value)
        else:
            src_step, src_output = inp.from_step
            inputs[inp.name] = outputs[src_step][src_output]

    started = time.perf_counter()
    log = run_dir / "logs" / f"{step.name}.log"
    if step.kind == "register":
        out = {name: run_dir / step.name / name for name in step.outputs}
        argv = step_arguments(
            step,
            inputs={k: str(v) for k, v in inputs.items()},
            outputs={k: str(v) for k, v in out.items()},
            params=params,
        )
        argv += [
            "--tracking-uri",
            tracking_uri,
            "--pipeline-run-id",
            run_dir.name,
            "--artifact-root",
            (workdir / "mlflow" / "artifacts").as_uri(),
        ]
        code, text = _run_module(step.module, argv, log)
        outputs[step.name] = out
        record = StepRecord(
            step.name,
            "ran" if code == 0 else "failed",
            outputs={k: str(v) for k, v in out.items()},
            seconds=time.perf_counter() - started,
            message=_last_line(text),
        )
        if code != 0:
            raise StepFailed(step.name, _last_line(text), record)
        return record

    key = _cache_key(step, settings, inputs, params)
    final = workdir / "cache" / step.name / key
    out = {name: final / name for name in step.outputs}
    if use_cache and (final / "_complete.json").is_file():
        outputs[step.name] = out
        return StepRecord(
            step.name,
            "cached",
            key=key,
            outputs={k: str(v) for k, v in out.items()},
            seconds=time.perf_counter() - started,
            message=f"cache {key[:10]}",
        )

    staging = workdir / "cache" / step.name / f".tmp-{key}-{uuid.uuid4().hex[:6]}"
    tmp_out = {name: staging / name for name in step.outputs}
    argv = step_arguments(
        step,
        inputs={k: str(v) for k, v in inputs.items()},
        outputs={k: str(v) for k, v in tmp_out.items()},
        params=params,
    )
    code, text = _run_module(step.module, argv, log)
    seconds = time.perf_counter() - started
    if code != 0:
        kept = run_dir / step.name
        if staging.exists():
            shutil.rmtree(kept, ignore_errors=True)
            shutil.move(str(staging), kept)
        record = StepRecord(
            step.name,
            "failed",
            key=key,
            outputs={n: str(kept / n) for n in step.outputs},
            seconds=seconds,
            message=_failure_message(step, kept, text),
        )
        raise StepFailed(step.name, record.message, record)
    (staging / "_complete.json").write_text(json.dumps({"key": key, "argv": argv}))
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    outputs[step.name] = out
    return StepRecord(
        step.name,
        "ran",
        key=key,
        outputs={k: str(v) for k, v in out.items()},
        seconds=seconds,
        message=_last_line(text),
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _failure_message(step: Step, kept: Path, text: str) -> str:
    report = kept / "report" / "report.json"
    if step.name == "validate-data" and report.is_file():
        problems = json.loads(report.read_text()).get("problems", [])
        if problems:
            return "data validation failed: " + "; ".join(p["message"] for p in problems)
    return text.strip() or f"{step.name} exited with an error"
