"""validate-data: the batch against its data contract (pandera) and against drift (PSI, KS).

    python -m pipelines.steps.validate --data PATH [--baseline DIR] --report-dir DIR \
        [--contract FILE] [--drift-threshold 0.2] [--chunk-rows 1000000]

Writes DIR/report.json. Exit code 0 when the batch passes, 1 when it fails (the report and
stderr name each column and rule, with the first row numbers), 2 when the step cannot run.

The batch is read `--chunk-rows` rows at a time (Parquet record batches): each chunk is
validated with the same pandera schema and counted for drift, and only the problems and
counts are kept, so memory is bounded by the chunk, not by the batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.steps._common import (
    DEFAULT_CHUNK_ROWS,
    StepError,
    data_hash,
    feature_columns,
    iter_chunks,
    load_contract,
    read_json,
    write_json,
)
from pipelines.steps.stats import DriftAccumulator, drift_report, feature_statistics, psi

__all__ = ["contract_problems", "drift_report", "feature_statistics", "psi", "validate"]

MAX_EXAMPLES = 3


def build_schema(contract: dict[str, Any]) -> Any:
    """A pandera DataFrameSchema for `contract` (types, ranges, null rules, label domain)."""
    import pandera.pandas as pa

    label = contract["label"]
    columns = {}
    for name, rule in contract["columns"].items():
        checks = []
        if "min" in rule and "max" in rule:
            checks.append(pa.Check.in_range(rule["min"], rule["max"]))
        elif "min" in rule:
            checks.append(pa.Check.ge(rule["min"]))
        elif "max" in rule:
            checks.append(pa.Check.le(rule["max"]))
        if name == label["column"] and "domain" in label:
            checks.append(pa.Check.isin(list(label["domain"])))
        columns[name] = pa.Column(
            rule.get("dtype", "float64"),
            checks=checks,
            nullable=bool(rule.get("nullable", False)),
            coerce=True,
        )
    return pa.DataFrameSchema(columns, strict=False, name=contract.get("name"))


def _rule_text(check: str) -> str:
    if check == "column_in_dataframe":
        return "required column missing"
    if check == "not_nullable":
        return "nulls not allowed"
    if check.startswith(("coerce_dtype", "dtype")):
        return "wrong type, expected " + check.split("'")[1] if "'" in check else check
    if check.startswith("in_range"):
        return "out of range " + check[len("in_range") :]
    if check.startswith("isin"):
        return "outside label domain " + check[len("isin") :]
    return check


def _chunk_problems(frame: pd.DataFrame, contract: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (column, rule) `frame` breaks: count, example values and row numbers
    (the frame's index: row numbers in the whole batch)."""
    import pandera.pandas as pa

    try:
        build_schema(contract).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    problems: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for _, row in cases.iterrows():
        missing = str(row["check"]) == "column_in_dataframe"
        column = row["failure_case"] if missing or row["column"] is None else row["column"]
        rule = _rule_text(str(row["check"]))
        if rule.startswith("wrong type") and (column, "coerce") in seen:
            continue  # pandera reports a failed coercion twice; once is enough
        if (column, rule) in seen:
            continue
        seen.add((column, rule))
        if str(row["check"]).startswith("coerce_dtype"):
            seen.add((column, "coerce"))
        same = cases[(cases["column"] == row["column"]) & (cases["check"] == row["check"])]
        whole = rule == "required column missing"
        head = same.head(MAX_EXAMPLES)
        problems.append(
            {
                "column": str(column),
                "rule": rule,
                "rows": 1 if whole else len(same),
                "examples": []
                if whole
                else [None if pd.isna(v) else v for v in head["failure_case"].tolist()],
                "row_numbers": []
                if whole
                else [int(i) for i in head["index"].tolist() if not pd.isna(i)],
            }
        )
    return problems


class ProblemLog:
    """Problems of a batch validated chunk by chunk: counts added up, the first examples and
    row numbers kept, each (column, rule) once, in the order first found."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, problems: list[dict[str, Any]]) -> None:
        for problem in problems:
            key = (problem["column"], problem["rule"])
            known = self.found.get(key)
            if known is None:
                self.found[key] = dict(problem)
            elif problem["rule"] != "required column missing":
                known["rows"] += problem["rows"]
                known["examples"] = (known["examples"] + problem["examples"])[:MAX_EXAMPLES]
                known["row_numbers"] = (known["row_numbers"] + problem["row_numbers"])[
                    :MAX_EXAMPLES
                ]

    def problems(self) -> list[dict[str, Any]]:
        out = []
        for problem in self.found.values():
            examples, rows = problem["examples"], problem["row_numbers"]
            where = f", first at row(s) {rows}" if rows else ""
            message = f"column '{problem['column']}': {problem['rule']}" + (
                f" in {problem['rows']} row(s), e.g. {examples}{where}" if examples else ""
            )
            out.append({**problem, "message": message})
        return out


def contract_problems(frame: pd.DataFrame, contract: dict[str, Any]) -> list[dict[str, Any]]:
    """One problem per (column, rule) the table in memory breaks, with a count, example values
    and the first row numbers (0-based, the frame's index)."""
    log = ProblemLog()
    log.add(_chunk_problems(frame, contract))
    return log.problems()


def validate(
    data: Path,
    *,
    contract: dict[str, Any],
    baseline: dict[str, Any] | None,
    drift_threshold: float,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> dict[str, Any]:
    """The full validation report for the batch at `data`, read `chunk_rows` rows at a time."""
    drift = None
    if baseline is not None:
        known = baseline.get("features", {})
        features = [c for c in feature_columns(contract) if c in known]
        drift = DriftAccumulator({"features": {c: known[c] for c in features}})
    log = ProblemLog()
    rows = 0
    for chunk in iter_chunks(data, None, chunk_rows):
        rows += len(chunk)
        log.add(_chunk_problems(chunk, contract))
        if drift is not None:
            drift.add(chunk)
        del chunk  # before the next one is read
    report: dict[str, Any] = {
        "data": str(data),
        "data_hash": data_hash(data),
        "rows": rows,
        "chunk_rows": chunk_rows,
        "contract": contract.get("name"),
        "problems": [],
    }
    if rows == 0:
        report["problems"].append(
            {
                "column": "*",
                "rule": "batch is empty",
                "rows": 0,
                "examples": [],
                "row_numbers": [],
                "message": "the batch has no rows",
            }
        )
    report["problems"] += log.problems()
    if drift is None:
        report["drift"] = {
            "status": "skipped",
            "reason": "no baseline of accepted training data",
            "threshold": drift_threshold,
        }
    else:
        report["drift"] = drift.report(drift_threshold)
        for name in report["drift"]["drifted"]:
            value = report["drift"]["features"][name]["psi"]
            report["problems"].append(
                {
                    "column": name,
                    "rule": "distribution drift",
                    "rows": rows,
                    "examples": [],
                    "row_numbers": [],
                    "message": f"column '{name}': distribution drift, PSI {value:.3f} > "
                    f"threshold {drift_threshold}",
                }
            )
    report["status"] = "failed" if report["problems"] else "passed"
    return report


def find_baseline(path: Path | None) -> dict[str, Any] | None:
    """baseline.json at `path` (a file or a folder holding one); None when there is none."""
    if path is None or str(path) in ("", "none"):
        return None
    path = Path(path)
    candidate = path / "baseline.json" if path.is_dir() else path
    return read_json(candidate) if candidate.is_file() else None


def summary(report: dict[str, Any]) -> str:
    lines = [
        f"data validation {report['status']}: {report['rows']} rows, "
        f"contract {report['contract']}, drift {report['drift']['status']}"
    ]
    lines += [f"  - {p['message']}" for p in report["problems"]]
    if report["problems"]:
        lines.append(
            "  fix the batch (or the contract, if the change is intended) and re-run; "
            "nothing was trained or registered"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.steps.validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--report-dir", type=Path, required=True)
    parser.add_argument("--contract", default="")
    parser.add_argument("--drift-threshold", type=float, default=0.2)
    parser.add_argument(
        "--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows held at a time"
    )
    args = parser.parse_args(argv)
    try:
        report = validate(
            args.data,
            contract=load_contract(args.contract),
            baseline=find_baseline(args.baseline),
            drift_threshold=args.drift_threshold,
            chunk_rows=args.chunk_rows,
        )
    except StepError as exc:
        print(f"validate-data: {exc}", file=sys.stderr)
        return 2
    write_json(args.report_dir / "report.json", report)
    print(summary(report), file=sys.stderr if report["problems"] else sys.stdout)
    return 0 if report["status"] == "passed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
