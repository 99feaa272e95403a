"""Pipeline overhead: total local pipeline time / the time of the steps' own work.

    .venv/bin/python -m benchmarks.pipeline_overhead [--rows 10000 100000 1000000]

For each size a synthetic batch (the breast cancer set's class means and covariances) is
written as Parquet, and `run_local` runs every step with the cache off in a fresh work folder.
"Steps' own work" is the time spent inside the step modules' `main` (reading, computing,
writing their outputs), timed by wrapping the runner's `_run_module`; "total" is the wall time
of `run_local`, which adds settings validation, the champion lookup in the registry, cache
keys (hashing every input and the step code), moving outputs into the cache, and run.json.
The data generation is not counted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks._common import write_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args(argv)
    import pipelines.local as runner
    from pipelines.data import synthetic
    from pipelines.definition import PipelineSettings
    from pipelines.local import run_local

    work: dict[str, float] = {}
    inner = runner._run_module

    def timed(module: str, argv: list[str], log: Path) -> tuple[int, str]:
        started = time.perf_counter()
        try:
            return inner(module, argv, log)
        finally:
            work[module.rsplit(".", 1)[1]] = time.perf_counter() - started

    runner._run_module = timed  # timing only: the step still runs as it always does

    # warm the imports (mlflow, sklearn, pandera) so the first size is not charged for them
    with tempfile.TemporaryDirectory() as tmp:
        run_local(PipelineSettings(client="warm"), workdir=Path(tmp), progress=False)
    rows_out = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "batch.parquet"
            synthetic(rows, seed=1).to_parquet(data, index=False)
            work.clear()
            started = time.perf_counter()
            result = run_local(
                PipelineSettings(client="bench"),
                workdir=Path(tmp) / "w",
                data=data,
                progress=False,
                use_cache=False,
            )
            total = time.perf_counter() - started
        steps = dict(work)
        own = sum(steps.values())
        print(f"{rows} rows: {result.status}, total {total:.2f}s, steps {own:.2f}s")
        rows_out.append(
            f"| {rows:,} | {result.status} | {total:.2f} | {own:.2f} | "
            f"{total / own:.3f} | {total - own:.2f} | "
            + ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
            + " |"
        )
    body = (
        "| rows | outcome | total (s) | steps' work (s) | overhead ratio | overhead (s) "
        "| per step (s) |\n|---|---|---|---|---|---|---|\n" + "\n".join(rows_out) + "\n\n"
        "Overhead ratio = total / steps' work (1.0 would be no overhead). Cache off; "
        "imports warmed by one run on the example data first."
    )
    write_section("pipeline_overhead", "Pipeline overhead", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
