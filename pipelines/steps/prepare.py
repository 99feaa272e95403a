"""prepare: split the validated batch into train/test, keep the contract's features, and write
baseline statistics of the train split (the next run's drift reference).

Each split folder holds data.parquet (the contract's features then its label, no index) and
schema.json. Parquet, not CSV: at a million rows writing the splits as CSV took longer than
everything else in the run together, and the next steps read Parquet at memory speed.

    python -m pipelines.steps.prepare --data PATH [--report DIR] --train-dir DIR --test-dir DIR \
        --baseline-dir DIR [--contract FILE] [--test-size 0.25] [--seed 42]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.steps._common import (
    SPLIT_FILES,
    StepError,
    data_hash,
    feature_columns,
    forget_tables,
    load_contract,
    read_json,
    read_table,
    table_files,
    write_json,
    write_table,
)
from pipelines.steps.validate import feature_statistics


def prepare(
    data: Path,
    report_dir: Path | None,
    *,
    contract: dict,
    test_size: float,
    seed: int,
    train_dir: Path,
    test_dir: Path,
    baseline_dir: Path,
) -> dict:
    from sklearn.model_selection import train_test_split

    if report_dir is not None:
        report = read_json(Path(report_dir) / "report.json")
        if report.get("status") != "passed":
            raise StepError(
                "the validation report says the batch failed; prepare runs only "
                "after validate-data passes"
            )
    digest = data_hash(data)
    label = contract["label"]["column"]
    features = feature_columns(contract)
    frame = read_table(data, [*features, label])
    forget_tables(table_files(data))  # split below; the batch itself is not read again
    stratify = frame[label] if frame[label].value_counts().min() >= 2 else None
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=stratify)
    del frame, stratify
    write_table(train, train_dir / SPLIT_FILES[0])
    write_table(test, test_dir / SPLIT_FILES[0])
    meta = {
        "features": features,
        "label": label,
        "rows_train": len(train),
        "rows_test": len(test),
        "test_size": test_size,
        "seed": seed,
        "data_hash": digest,
    }
    write_json(train_dir / "schema.json", meta)
    write_json(test_dir / "schema.json", meta)
    write_json(
        baseline_dir / "baseline.json",
        {
            "data_hash": digest,
            "rows": len(train),
            "features": {name: feature_statistics(train[name]) for name in features},
        },
    )
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.steps.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--report", type=Path, default=None, help="validate-data's report dir")
    parser.add_argument("--train-dir", type=Path, required=True)
    parser.add_argument("--test-dir", type=Path, required=True)
    parser.add_argument("--baseline-dir", type=Path, required=True)
    parser.add_argument("--contract", default="")
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        meta = prepare(
            args.data,
            args.report,
            contract=load_contract(args.contract),
            test_size=args.test_size,
            seed=args.seed,
            train_dir=args.train_dir,
            test_dir=args.test_dir,
            baseline_dir=args.baseline_dir,
        )
    except StepError as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 2
    print(
        f"prepare: {meta['rows_train']} train rows, {meta['rows_test']} test rows, "
        f"{len(meta['features'])} features"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
