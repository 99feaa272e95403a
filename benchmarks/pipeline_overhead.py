"""The local pipeline against the floor and against ZenML, in one run.

    .venv/bin/python -m benchmarks.pipeline_overhead [--rows 10000 100000 1000000] [--rounds 3]
        [--systems kit floor zenml]

For each size a synthetic batch (the breast cancer set's class means and covariances) is
written as Parquet once; then, per round, each system runs it as a fresh process in a fresh
work folder, cache off, and the wall time and peak resident memory (`wait4`) are taken:

- **kit**: `mlops pipeline run --stack acme-dev --target local --no-cache` (the CLI a user
  runs: settings from the stack file, validate-data -> prepare -> train -> evaluate ->
  quality-gate -> register into a fresh sqlite MLflow registry, ONNX export and parity);
- **floor**: `benchmarks/pipeline_floor.py`, the same work with the same library calls in one
  bare script (no runner, no step files, no intermediate splits);
- **ZenML**: `benchmarks/pipeline_zenml.py` on ZenML's local orchestrator, one ZenML step per
  kit step calling the same step entry points. ZenML lives in its own virtual environment
  under ~/.cache/mlops-bench/zenml (`ZENML_VERSION`, with the kit's library versions), which
  this script creates on first use; it is not a dependency of the kit. Its store is created
  by a warm-up run, as a user's would already exist.

Every system first runs once on the smallest batch (untimed) so that all start with the same
warm page cache. The order of the systems rotates between rounds. Medians are reported; the
machine is shared, so the load average at the start is printed with the table. Peak memory is
the peak resident set of the system's process (`wait4` in a small launcher, `PEAK`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks._common import ROOT, write_section

ZENML_VERSION = "0.98.0"
ZENML_HOME = Path.home() / ".cache" / "mlops-bench" / "zenml"
KIT_LIBRARIES = (
    "mlflow",
    "scikit-learn",
    "pandas",
    "numpy",
    "scipy",
    "pandera",
    "skl2onnx",
    "onnxruntime",
    "onnx",
    "pyarrow",
    "matplotlib",
    "cloudpickle",
)
SYSTEMS = ("kit", "floor", "zenml")
PEAK = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"code": os.waitstatus_to_exitcode(status), "peak_kb": usage.ru_maxrss}, out)
"""
"""Runs a command and records its peak resident set. A small interpreter forks it: a child
forked from this process would count this process's pages (the batches) in its peak."""


@dataclass
class Sample:
    seconds: float
    peak_mb: float
    ok: bool
    detail: dict = field(default_factory=dict)


def zenml_python() -> tuple[Path | None, str]:
    """The ZenML environment's interpreter, installed on first use; (None, why) if it cannot."""
    python = ZENML_HOME / "bin" / "python"
    if python.is_file():
        return python, ""
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    pins = [f"{name}=={metadata.version(name)}" for name in KIT_LIBRARIES]
    try:
        ZENML_HOME.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([uv, "venv", "--python", sys.executable, str(ZENML_HOME)], check=True)
        subprocess.run(
            [uv, "pip", "install", "--compile-bytecode", "--python", str(python)]
            + [f"zenml[local]=={ZENML_VERSION}"]
            + pins
            + ["pyyaml", "rich"],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(ZENML_HOME, ignore_errors=True)
        return None, f"ZenML {ZENML_VERSION} could not be installed here ({exc})"
    return python, ""


def command(system: str, data: Path, work: Path, zenml: Path | None) -> list[str]:
    if system == "kit":
        return [
            str(Path(sys.executable).parent / "mlops"),
            "pipeline",
            "run",
            "--stack",
            "acme-dev",
            "--target",
            "local",
            "--workdir",
            str(work),
            "--data",
            str(data),
            "--no-cache",
            "--no-progress",
        ]
    if system == "floor":
        return [sys.executable, "-m", "benchmarks.pipeline_floor", "--data", str(data)] + [
            "--workdir",
            str(work),
        ]
    assert zenml is not None
    script = str(ROOT / "benchmarks" / "pipeline_zenml.py")
    return [str(zenml), script, "--data", str(data), "--workdir", str(work)]


def environment(system: str, scratch: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    # as on a user's machine: Python caches bytecode (a CI variable here forbids it, and every
    # process would compile MLflow and scikit-learn from source again)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if system == "zenml":
        env.update(
            ZENML_CONFIG_PATH=str(scratch / "zenml-config"),
            ZENML_ANALYTICS_OPT_IN="false",
            ZENML_LOGGING_VERBOSITY="WARN",
            ZENML_ENABLE_RICH_TRACEBACK="false",
        )
    return env


def measure(system: str, data: Path, scratch: Path, zenml: Path | None) -> Sample:
    """One fresh process of `system` on `data` in a fresh work folder."""
    work = Path(tempfile.mkdtemp(prefix=f"{system}-", dir=scratch))
    log, peak = work.with_suffix(".log"), work.with_suffix(".peak.json")
    started = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run(
            [sys.executable, "-S", "-c", PEAK, str(peak), *command(system, data, work, zenml)],
            cwd=scratch if system == "zenml" else ROOT,
            env=environment(system, scratch),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    seconds = time.perf_counter() - started
    outcome = json.loads(peak.read_text())
    detail: dict = {}
    if system == "kit":
        for run_json in (work / "runs").glob("*/run.json"):
            run = json.loads(run_json.read_text())
            detail = {s["name"]: round(s["seconds"], 2) for s in run["steps"]}
    ok = outcome["code"] == 0
    if not ok:
        print(f"  {system} failed; log: {log}\n" + log.read_text()[-1500:], file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    return Sample(seconds, outcome["peak_kb"] / 1024, ok, detail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--no-write", action="store_true", help="Print; leave the docs alone.")
    args = parser.parse_args(argv)
    from pipelines.data import synthetic

    systems = list(args.systems)
    zenml, why = (None, "")
    if "zenml" in systems:
        zenml, why = zenml_python()
        if zenml is None:
            print(why, file=sys.stderr)
            systems.remove("zenml")
    load = os.getloadavg()
    results: dict[tuple[int, str], list[Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as tmp:
        scratch = Path(tmp)
        batches = {}
        for rows in args.rows:
            batches[rows] = scratch / f"batch-{rows}.parquet"
            synthetic(rows, seed=1).to_parquet(batches[rows], index=False)
        for system in systems:  # warm-up: page cache, ZenML's store
            measure(system, batches[min(args.rows)], scratch, zenml)
        for rows in args.rows:
            for round_ in range(args.rounds):
                order = systems[round_ % len(systems) :] + systems[: round_ % len(systems)]
                for system in order:
                    sample = measure(system, batches[rows], scratch, zenml)
                    results.setdefault((rows, system), []).append(sample)
                    print(
                        f"{rows:>9} rows  {system:<5} {sample.seconds:7.2f}s "
                        f"{sample.peak_mb:7.0f} MB  {'ok' if sample.ok else 'FAILED'}",
                        flush=True,
                    )
    end_load = os.getloadavg()
    write = not args.no_write
    body = table(args.rows, systems, results, args.rounds, load, end_load, why)
    if write:
        write_section("pipeline_overhead", "Local pipeline: kit, floor and ZenML", body)
    else:
        print(body)
    return 0


def _median(samples: list[Sample], attr: str) -> float:
    return statistics.median(getattr(s, attr) for s in samples if s.ok) if samples else float("nan")


def table(
    rows_list: list[int],
    systems: list[str],
    results: dict[tuple[int, str], list[Sample]],
    rounds: int,
    load: tuple[float, ...],
    end_load: tuple[float, ...],
    why: str,
) -> str:
    lines = [
        "| rows | kit (s) | floor (s) | ZenML (s) | kit / floor | ZenML / kit "
        "| peak MB kit | peak MB floor | peak MB ZenML |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    steps_lines = []
    for rows in rows_list:
        secs = {s: _median(results.get((rows, s), []), "seconds") for s in SYSTEMS}
        mem = {s: _median(results.get((rows, s), []), "peak_mb") for s in SYSTEMS}

        def cell(value: float, fmt: str = "{:.1f}") -> str:
            return "n/a" if value != value else fmt.format(value)  # NaN: not measured

        lines.append(
            f"| {rows:,} | {cell(secs['kit'])} | {cell(secs['floor'])} | {cell(secs['zenml'])} "
            f"| {cell(secs['kit'] / secs['floor'], '{:.2f}')} "
            f"| {cell(secs['zenml'] / secs['kit'], '{:.2f}')} "
            f"| {cell(mem['kit'], '{:,.0f}')} | {cell(mem['floor'], '{:,.0f}')} "
            f"| {cell(mem['zenml'], '{:,.0f}')} |"
        )
        kit = [s for s in results.get((rows, "kit"), []) if s.ok and s.detail]
        if kit:
            names = list(kit[0].detail)
            per = {n: statistics.median(s.detail.get(n, 0.0) for s in kit) for n in names}
            steps_lines.append(
                f"| {rows:,} | " + ", ".join(f"{n} {v:.2f}" for n, v in per.items()) + " |"
            )
        all_samples = {s: [x.seconds for x in results.get((rows, s), [])] for s in systems}
        print(rows, {s: [round(v, 1) for v in vals] for s, vals in all_samples.items()})
    note = f"\n\nZenML: {why}" if why else ""
    return (
        "\n".join(lines)
        + f"\n\nMedians of {rounds} rounds, each system a fresh process (imports included) in a "
        f"fresh work folder, cache off; load average {load[0]:.1f} at the start and "
        f"{end_load[0]:.1f} at the end. Peak MB is the process's peak resident set "
        "(`wait4`).\n\nThe kit's steps inside those runs (median seconds, from run.json; "
        "the rest of the kit's time is the CLI start and the imports):\n\n"
        "| rows | per step (s) |\n|---|---|\n" + "\n".join(steps_lines) + note
    )


if __name__ == "__main__":
    raise SystemExit(main())
