"""The local pipeline as a ZenML pipeline: one ZenML step per kit step, each calling the kit's
step entry point (`pipelines.steps.<step>.main`) with the arguments the kit's runner passes.

    <zenml venv>/bin/python benchmarks/pipeline_zenml.py --data batch.parquet --workdir DIR

Run by `benchmarks/pipeline_overhead.py` with the interpreter of a separate virtual
environment (ZenML is not a dependency of the kit; its pins clash with the kit's) and the kit
on PYTHONPATH. ZenML's local orchestrator runs the steps in this process, one after another,
caching off; steps hand each other the paths of the step outputs (small string artifacts), so
ZenML stores no DataFrame or model of its own: what it adds is its orchestration (run and step
records in its sqlite store, artifact versions, logs), not a second copy of the data. The
kit's in-run memo (`run_memo`) is the kit runner's, so each step here reads its inputs from
disk as on any orchestrator that runs the same step code.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from zenml import pipeline, step

from pipelines.definition import PIPELINE, PipelineSettings, parameter_defaults, step_arguments

STEPS = {s.name: s for s in PIPELINE}
CONTEXT: dict[str, Any] = {}
"""The work folder and the kit's parameters (the local orchestrator runs steps in-process)."""


def _run(name: str, inputs: dict[str, str], extra: list[str] | None = None) -> dict[str, str]:
    import importlib

    kit_step = STEPS[name]
    params = CONTEXT["params"]
    out = {o: str(Path(CONTEXT["workdir"]) / name / o) for o in kit_step.outputs}
    argv = step_arguments(kit_step, inputs=inputs, outputs=out, params=params) + (extra or [])
    code = importlib.import_module(kit_step.module).main(argv)
    if code != 0:
        raise RuntimeError(f"{name} exited {code}")
    return out


@step(enable_cache=False)
def validate_data(data: str) -> str:
    return _run("validate-data", {"data": data})["report"]


@step(enable_cache=False)
def prepare(data: str, report: str) -> tuple[str, str, str]:
    out = _run("prepare", {"data": data, "report": report})
    return out["train"], out["test"], out["baseline"]


@step(enable_cache=False)
def train(train_dir: str) -> str:
    return _run("train", {"train": train_dir})["model"]


@step(enable_cache=False)
def evaluate(model: str, test: str) -> str:
    return _run("evaluate", {"model": model, "test": test})["evaluation"]


@step(enable_cache=False)
def quality_gate(evaluation: str) -> str:
    return _run("quality-gate", {"evaluation": evaluation})["gate"]


@step(enable_cache=False)
def register(model: str, evaluation: str, gate: str, report: str, baseline: str, test: str) -> str:
    work = Path(CONTEXT["workdir"])
    inputs = {
        "model": model,
        "evaluation": evaluation,
        "gate": gate,
        "report": report,
        "baseline": baseline,
        "test": test,
    }
    uri = f"sqlite:///{(work / 'mlflow' / 'mlflow.db').resolve()}"
    (work / "mlflow").mkdir(parents=True, exist_ok=True)
    extra = [
        "--tracking-uri",
        uri,
        "--pipeline-run-id",
        "zenml",
        "--artifact-root",
        (work / "mlflow" / "artifacts").resolve().as_uri(),
    ]
    out = _run("register", inputs, extra)
    return out["registration"]


@pipeline(enable_cache=False)
def training(data: str) -> None:
    report = validate_data(data)
    train_dir, test_dir, baseline = prepare(data, report)
    model = train(train_dir)
    evaluation = evaluate(model, test_dir)
    gate = quality_gate(evaluation)
    register(model, evaluation, gate, report, baseline, test_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    settings = PipelineSettings(client="zenml")
    CONTEXT["workdir"] = str(args.workdir.resolve())
    CONTEXT["params"] = parameter_defaults(
        settings, data_uri=str(args.data.resolve()), baseline_uri=""
    )
    training(data=str(args.data.resolve()))
    registration = json.loads(
        (args.workdir / "register" / "registration" / "registration.json").read_text()
    )
    print(
        json.dumps(
            {"registered": registration["registered"], "seconds": time.perf_counter() - started}
        )
    )
    return 0 if registration["registered"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
