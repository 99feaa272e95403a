"""validate-data: the batch against its data contract (pandera) and against drift (PSI, KS).

    python -m pipelines.steps.validate --data PATH [--baseline DIR] --report-dir DIR \
        [--contract FILE] [--drift-threshold 0.2]

Writes DIR/report.json. Exit code 0 when the batch passes, 1 when it fails (the report and
stderr name each column and rule), 2 when the step cannot run at all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.steps._common import (
    StepError,
    data_hash,
    feature_columns,
    load_contract,
    read_json,
    read_table,
    write_json,
)

EPS = 1e-4
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


def contract_problems(frame: pd.DataFrame, contract: dict[str, Any]) -> list[dict[str, Any]]:
    """One problem per (column, rule) the batch breaks, with a count and example values."""
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
        count = 1 if rule == "required column missing" else len(same)
        examples = (
            []
            if rule == "required column missing"
            else [
                None if pd.isna(v) else v for v in same["failure_case"].head(MAX_EXAMPLES).tolist()
            ]
        )
        problems.append(
            {
                "column": str(column),
                "rule": rule,
                "rows": int(count),
                "examples": examples,
                "message": f"column '{column}': {rule}"
                + (f" in {count} row(s), e.g. {examples}" if examples else ""),
            }
        )
    return problems


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two bin-proportion vectors."""
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


EDGE_LEVELS = np.linspace(0, 1, 11)[1:-1]
"""Decile levels of the PSI bin edges."""
SAMPLE_LEVELS = np.linspace(0, 1, 101)
"""Levels of the 101 quantiles kept as a compact reference sample (for KS)."""


def feature_statistics(values: pd.Series, bins: int = 10) -> dict[str, Any]:
    """Decile edges and proportions, and 101 quantiles as a compact reference sample.

    One pass over the column: every quantile comes from one selection (`np.quantile` with all
    levels at once), the proportions from one `searchsorted`, mean and std from the same array.
    """
    clean = values.to_numpy(dtype=float, na_value=np.nan)
    if np.isnan(clean).any():
        clean = clean[~np.isnan(clean)]
    levels = EDGE_LEVELS if bins == 10 else np.linspace(0, 1, bins + 1)[1:-1]
    both = np.quantile(clean, np.concatenate([levels, SAMPLE_LEVELS]))
    edges = np.unique(both[: len(levels)])
    counts = np.bincount(np.searchsorted(edges, clean, side="right"), minlength=len(edges) + 1)
    return {
        "edges": edges.tolist(),
        "proportions": (counts / max(len(clean), 1)).tolist(),
        "quantiles": both[len(levels) :].tolist(),
        "mean": float(clean.mean()),
        "std": float(clean.std()),
    }


def drift_report(frame: pd.DataFrame, baseline: dict[str, Any], threshold: float) -> dict:
    """Per-feature PSI (the gate) and Kolmogorov-Smirnov (reported) against the baseline."""
    from scipy.stats import ks_2samp

    features: dict[str, Any] = {}
    drifted: list[str] = []
    for name, ref in baseline["features"].items():
        if name not in frame:
            continue
        values = pd.to_numeric(frame[name], errors="coerce").dropna().to_numpy(dtype=float)
        if len(values) == 0:
            continue
        edges = np.asarray(ref["edges"], dtype=float)
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        value = psi(ref["proportions"], counts / len(values))
        ks = ks_2samp(values, np.asarray(ref["quantiles"], dtype=float))
        features[name] = {
            "psi": round(value, 6),
            "ks_statistic": round(float(ks.statistic), 6),
            "ks_pvalue": float(ks.pvalue),
            "drifted": value > threshold,
        }
        if value > threshold:
            drifted.append(name)
    return {
        "status": "failed" if drifted else "passed",
        "threshold": threshold,
        "statistic": "psi",
        "drifted": drifted,
        "features": features,
    }


def validate(
    data: Path, *, contract: dict[str, Any], baseline: dict[str, Any] | None, drift_threshold: float
) -> dict[str, Any]:
    """The full validation report for the batch at `data`."""
    frame = read_table(data)
    report: dict[str, Any] = {
        "data": str(data),
        "data_hash": data_hash(data),
        "rows": len(frame),
        "contract": contract.get("name"),
        "problems": [],
    }
    if frame.empty:
        report["problems"].append(
            {
                "column": "*",
                "rule": "batch is empty",
                "rows": 0,
                "examples": [],
                "message": "the batch has no rows",
            }
        )
    report["problems"] += contract_problems(frame, contract)
    if baseline is None:
        report["drift"] = {
            "status": "skipped",
            "reason": "no baseline of accepted training data",
            "threshold": drift_threshold,
        }
    else:
        features = [c for c in feature_columns(contract) if c in baseline.get("features", {})]
        report["drift"] = drift_report(
            frame[[c for c in features if c in frame]],
            {"features": {c: baseline["features"][c] for c in features}},
            drift_threshold,
        )
        for name in report["drift"]["drifted"]:
            value = report["drift"]["features"][name]["psi"]
            report["problems"].append(
                {
                    "column": name,
                    "rule": "distribution drift",
                    "rows": len(frame),
                    "examples": [],
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
    args = parser.parse_args(argv)
    try:
        report = validate(
            args.data,
            contract=load_contract(args.contract),
            baseline=find_baseline(args.baseline),
            drift_threshold=args.drift_threshold,
        )
    except StepError as exc:
        print(f"validate-data: {exc}", file=sys.stderr)
        return 2
    write_json(args.report_dir / "report.json", report)
    print(summary(report), file=sys.stderr if report["problems"] else sys.stdout)
    return 0 if report["status"] == "passed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
