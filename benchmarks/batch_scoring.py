"""Local batch scoring: rows per second and peak memory, streaming vs one-shot pandas.

    .venv/bin/python -m benchmarks.batch_scoring [--rows 1000000 10000000] [--formats parquet csv]
        [--chunk-rows 50000] [--workdir /tmp/mlops-bench-batch] [--no-write]

For each size and input format, on the same registered model (the example pipeline run once
into the work folder) and the same synthetic file (`pipelines.data.synthetic`, 31 columns):

- `streaming`: `pipelines.batch.score_file` (chunks of `--chunk-rows`, contract checks per
  row, rejects file, Parquet/CSV writer), what `mlops batch score` runs;
- `one-shot`: `pd.read_parquet` / `pd.read_csv` of the whole file, `predict` and
  `predict_proba` on all rows, one `to_parquet` / `to_csv`: the plain way, no row checks.

Each variant runs in its own process. Memory is the kernel's resident high-water mark
(VmHWM): `baseline` is the resident size after imports and model load, before any data is
read; the high-water mark is then reset (`/proc/self/clear_refs`) and `peak` is the highest
resident size while scoring, so `peak - baseline` is what the data costs. (ru_maxrss would
include the parent's size at fork time.) Numbers are printed and written to docs/serving.md
under "Performance" (section `bench:batch_scoring`), not to the test suite.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import ROOT, machine

SERVING_MD = ROOT / "docs" / "serving.md"
MODEL = "bench-classifier"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Reset VmHWM to the current resident size (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


def child(variant: str, path: Path, out: Path, tracking_uri: str, chunk_rows: int) -> dict:
    """Run one variant in this process and report rows, seconds and memory."""
    import pandas as pd

    from pipelines.batch import load_model, score_file

    model = load_model(tracking_uri, MODEL)
    import gc

    gc.collect()
    baseline = _status_mb("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    if variant == "streaming":
        result = score_file(model, path, out, chunk_rows=chunk_rows, progress=False)
        rows = result.rows_in
    else:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        x = frame[model.features]
        scored = pd.DataFrame(
            {
                "prediction": model.estimator.predict(x),
                "probability": model.estimator.predict_proba(x)[:, 1],
            }
        )
        if out.suffix == ".parquet":
            scored.to_parquet(out, index=False)
        else:
            scored.to_csv(out, index=False)
        rows = len(frame)
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "seconds": seconds,
        "baseline_mb": baseline,
        "peak_mb": _status_mb("VmHWM"),
    }


def make_input(path: Path, rows: int, block: int = 1_000_000) -> Path:
    """A synthetic batch of `rows`, written block by block so generating it stays small."""
    if path.is_file():
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.data import synthetic

    partial = path.with_name(path.name + ".partial")
    writer = None
    with open(partial, "w", encoding="utf-8") if path.suffix == ".csv" else _null() as fh:
        for i, start in enumerate(range(0, rows, block)):
            frame = synthetic(min(block, rows - start), seed=100 + i)
            if path.suffix == ".csv":
                frame.to_csv(fh, index=False, header=i == 0)
            else:
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or pq.ParquetWriter(partial, table.schema)
                writer.write_table(table)
    if writer is not None:
        writer.close()
    partial.replace(path)
    return path


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def registry(workdir: Path) -> str:
    """Train and register the example model once into `workdir`; its tracking URI."""
    from pipelines.definition import PipelineSettings
    from pipelines.local import run_local

    result = run_local(PipelineSettings(client="bench"), workdir=workdir, progress=False)
    if result.status != "registered":
        raise SystemExit(f"could not register the benchmark model: {result.reason}")
    return result.tracking_uri


def run_variant(variant: str, path: Path, tracking_uri: str, chunk_rows: int) -> dict:
    out = path.with_name(f"{path.stem}.{variant}.out{path.suffix}")
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.batch_scoring", "--child", variant,
            "--input", str(path), "--output", str(out), "--tracking-uri", tracking_uri,
            "--chunk-rows", str(chunk_rows),
        ],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{variant} on {path} failed:\n{proc.stderr[-3000:]}")
    out.unlink(missing_ok=True)
    out.with_name(out.stem + ".rejects.csv").unlink(missing_ok=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    lines = [
        "| rows | input | variant | seconds | rows/s | peak RSS (MB) | data cost (MB) |",
        "|---:|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['rows']:,} | {r['format']} | {r['variant']} | {r['seconds']:.1f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {r['peak_mb']:,.0f} | "
            f"{r['peak_mb'] - r['baseline_mb']:,.0f} |"
        )
    return "\n".join(lines)


def write_docs(body: str) -> None:
    """Replace the marked section in docs/serving.md and in docs/performance.md."""
    start, end = "<!-- bench:batch_scoring -->", "<!-- /bench:batch_scoring -->"
    block = f"{start}\n{body}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    for doc in (SERVING_MD, SERVING_MD.with_name("performance.md")):
        text = doc.read_text() if doc.is_file() else "# Serving\n"
        if pattern.search(text):
            text = pattern.sub(lambda _: block, text)
        elif doc == SERVING_MD:
            text = text + "\n" + block
        else:
            continue
        doc.write_text(text if text.endswith("\n") else text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--formats", nargs="+", default=["parquet"], choices=["parquet", "csv"])
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlops-bench-batch"))
    parser.add_argument("--no-write", action="store_true", help="Print only; leave the docs.")
    parser.add_argument("--child", choices=["streaming", "one-shot"], help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tracking-uri", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        report = child(args.child, args.input, args.output, args.tracking_uri, args.chunk_rows)
        print(json.dumps(report))
        return 0

    args.workdir.mkdir(parents=True, exist_ok=True)
    header = machine()
    tracking_uri = registry(args.workdir / "registry")
    results = []
    for rows in args.rows:
        for fmt in args.formats:
            path = make_input(args.workdir / f"batch-{rows}.{fmt}", rows)
            for variant in ("streaming", "one-shot"):
                report = run_variant(variant, path, tracking_uri, args.chunk_rows)
                report.update(variant=variant, format=fmt)
                results.append(report)
                print(
                    f"{rows:>11,} {fmt:<8} {variant:<10} {report['seconds']:7.1f} s "
                    f"{report['rows'] / report['seconds']:>10,.0f} rows/s "
                    f"peak {report['peak_mb']:,.0f} MB (data {report['peak_mb'] - report['baseline_mb']:,.0f} MB)",  # noqa: E501
                    flush=True,
                )
    cmd = "python -m benchmarks.batch_scoring " + " ".join(
        ["--rows", *map(str, args.rows), "--formats", *args.formats, "--chunk-rows",
         str(args.chunk_rows)]
    )  # fmt: skip
    body = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC by `{cmd}`, chunks "
        f"of {args.chunk_rows:,} rows. Machine: {header}\n\n{table(results)}\n"
    )
    print("\n" + body)
    if not args.no_write:
        write_docs(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
