"""Drift check of captured serving traffic against the training baseline (a step entry point).

    python -m pipelines.steps.drift --captures DIR --baseline PATH --threshold 0.2 \
        --report-dir DIR

Runs where the platform schedules it (the on-prem drift CronWorkflow; by hand anywhere). It
reads every capture file below `--captures` (JSON lines, optionally gzipped) in any of the
shapes the kit's endpoints write: the local router's records (`request`, `content_type`), a
KServe logger / Vector event whose `data`, `body` or `message` holds the request payload, or
the payload itself (`instances`, `inputs`, `dataframe_split`, `dataframe_records`). Responses
are skipped. It writes `drift_report.json` (per-feature PSI and KS, the validate-data step's
statistics) and `max_psi` (one number, for the scheduler's metric) to `--report-dir`.

Drift is a finding, not a failure: the exit code is 0 whether or not drift is found, 2 when
the inputs are unusable (no baseline), so alerting stays with the metric and its rule.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Iterator, Mapping
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.steps._common import StepError, write_json
from pipelines.steps.validate import drift_report, find_baseline

PAYLOAD_KEYS = ("instances", "inputs", "dataframe_split", "dataframe_records")
CAPTURE_SUFFIXES = (".jsonl", ".json", ".log", ".ndjson")


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield line


def capture_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and (
            p.suffix in CAPTURE_SUFFIXES
            or p.name.endswith(tuple(s + ".gz" for s in CAPTURE_SUFFIXES))
        )
    )


def _is_response(record: Mapping[str, Any]) -> bool:
    kind = str(record.get("ce-type") or record.get("type") or record.get("ce_type") or "")
    return kind.endswith(".response") or (
        "predictions" in record and not any(k in record for k in PAYLOAD_KEYS)
    )


def request_payload(record: Any) -> tuple[str, str] | None:
    """(body, content type) of the request a capture record holds; None for a response or a
    record with no request in it."""
    if not isinstance(record, Mapping) or _is_response(record):
        return None
    if "request" in record:
        return str(record["request"]), str(record.get("content_type", "application/json"))
    if any(k in record for k in PAYLOAD_KEYS):
        return json.dumps(record), "application/json"
    for key in ("data", "body", "message"):
        inner = record.get(key)
        if isinstance(inner, str):
            try:
                inner = json.loads(inner)
            except json.JSONDecodeError:
                continue
        if isinstance(inner, Mapping):
            return request_payload(inner)
    return None


def parse_request(body: str, content_type: str) -> pd.DataFrame:
    """A captured request as a DataFrame, parsed by MLflow's scoring-server parsers."""
    # MLflow's scoring server is imported only when captures are read: the step's CLI and
    # the drift statistics do not need it.
    from mlflow.pyfunc.scoring_server import infer_and_parse_data, parse_csv_input

    if content_type.split(";")[0].strip() == "text/csv":
        return parse_csv_input(StringIO(body))
    parsed = infer_and_parse_data(json.loads(body))
    if isinstance(parsed, pd.DataFrame):
        return parsed
    if isinstance(parsed, dict):
        return pd.DataFrame({k: np.asarray(v).ravel() for k, v in parsed.items()})
    return pd.DataFrame(np.asarray(parsed))


def read_captures(root: Path) -> tuple[pd.DataFrame, int]:
    """Every captured request row below `root`, and how many lines could not be read."""
    frames: list[pd.DataFrame] = []
    unreadable = 0
    for path in capture_files(root):
        for line in _lines(path):
            try:
                found = request_payload(json.loads(line))
                if found is not None:
                    frames.append(parse_request(*found))
            except Exception:  # noqa: BLE001 - a bad line is counted and reported, not fatal
                unreadable += 1
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame, unreadable


def check(captures: Path, baseline_path: Path, threshold: float) -> dict[str, Any]:
    baseline = find_baseline(baseline_path)
    if baseline is None:
        raise StepError(
            f"no baseline.json at {baseline_path}; point --baseline at the served version's "
            "baseline (the prepare step writes it; the register step stores it with the model)"
        )
    frame, unreadable = read_captures(captures) if captures.exists() else (pd.DataFrame(), 0)
    if frame.empty:
        return {
            "status": "no-data",
            "rows": 0,
            "unreadable_lines": unreadable,
            "max_psi": 0.0,
            "threshold": threshold,
            "features": {},
            "drifted": [],
        }
    missing = [name for name in baseline["features"] if name not in frame.columns]
    if missing:
        raise StepError(
            f"captured requests lack baseline features {missing[:5]}; the endpoint serves a "
            "model with other inputs than the baseline's: check --baseline names its version"
        )
    report = drift_report(frame, baseline, threshold)
    psis = [f["psi"] for f in report["features"].values()]
    report.update(
        rows=len(frame),
        unreadable_lines=unreadable,
        max_psi=round(max(psis), 6) if psis else 0.0,
        threshold=threshold,
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.steps.drift",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--captures", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--threshold", type=float, required=True)
    parser.add_argument("--report-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        report = check(args.captures, args.baseline, args.threshold)
    except StepError as exc:
        print(f"drift check failed: {exc}", file=sys.stderr)
        return 2
    args.report_dir.mkdir(parents=True, exist_ok=True)
    write_json(args.report_dir / "drift_report.json", report)
    (args.report_dir / "max_psi").write_text(f"{report['max_psi']}\n")
    drifted = report.get("drifted") or []
    print(
        f"drift check: {report['rows']} rows, max PSI {report['max_psi']} "
        f"(threshold {args.threshold}); drifted: {', '.join(drifted) or 'none'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
