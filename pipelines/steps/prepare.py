"""prepare: split the validated batch into train/test, keep the contract's features, and write
baseline statistics of the train split (the next run's drift reference).

Each split folder holds data.parquet (the contract's features then its label, no index) and
schema.json. Parquet, not CSV: at a million rows writing the splits as CSV took longer than
everything else in the run together, and the next steps read Parquet at memory speed.

    python -m pipelines.steps.prepare --data PATH [--report DIR] --train-dir DIR --test-dir DIR \
        --baseline-dir DIR [--contract FILE] [--test-size 0.25] [--seed 42] \
        [--chunk-rows 1000000]

The batch is read `--chunk-rows` rows at a time. Each chunk (rows k*N to (k+1)*N - 1) is
split with scikit-learn's stratified `train_test_split`, seeded per chunk (`chunk_seed`), and
appended to the split files with pyarrow's `ParquetWriter`; a batch of at most N rows is
therefore split exactly as one `train_test_split` of the whole batch. The split files get
their names only when complete. Baseline statistics come from per-chunk accumulators
(pipelines.steps.stats): moments while splitting, histograms in a second pass over the
train split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.steps._common import (
    DEFAULT_CHUNK_ROWS,
    SplitWriter,
    StepError,
    data_hash,
    feature_columns,
    forget_tables,
    iter_chunks,
    load_contract,
    one_chunk,
    read_json,
    table_files,
    write_json,
)
from pipelines.steps.stats import BaselineStatistics


def _split_chunk(chunk: Any, label: str, test_size: float, seed: int) -> tuple[Any, Any]:
    """(train, test) of one chunk: scikit-learn's `train_test_split`, stratified by the label
    when every class has two rows or more. A chunk too small to stratify is split without
    it; a single row goes to train."""
    from sklearn.model_selection import train_test_split

    if len(chunk) < 2:
        return chunk, chunk.iloc[:0]
    stratify = chunk[label] if chunk[label].value_counts().min() >= 2 else None
    try:
        return train_test_split(chunk, test_size=test_size, random_state=seed, stratify=stratify)
    except ValueError:
        if stratify is None:
            raise
        return train_test_split(chunk, test_size=test_size, random_state=seed)


def chunk_seed(seed: int, index: int) -> int:
    """The split seed of chunk `index`: `seed` itself for the first chunk (so a batch of one
    chunk splits exactly as one `train_test_split(random_state=seed)`), then one derived from
    (seed, index)."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


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
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> dict:
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
    statistics = BaselineStatistics(features)
    remember = one_chunk(data, chunk_rows)  # then train and evaluate take the splits from memory
    writers = {
        "train": SplitWriter(train_dir, remember=remember),
        "test": SplitWriter(test_dir, remember=remember),
    }
    chunks = 0
    try:
        for index, chunk in enumerate(iter_chunks(data, [*features, label], chunk_rows)):
            train, test = _split_chunk(chunk, label, test_size, chunk_seed(seed, index))
            writers["train"].write(train)
            writers["test"].write(test)
            statistics.add_moments(train)
            chunks += 1
            del chunk, train, test  # before the next chunk is read
        forget_tables(table_files(data))  # split; the batch itself is not read again
        if writers["train"].rows == 0 or writers["test"].rows == 0:
            raise StepError(
                f"the batch's {writers['train'].rows + writers['test'].rows} row(s) leave the "
                "train or the test split empty; pass a batch of at least a few rows"
            )
        train_file = writers["train"].close()
        writers["test"].close()
    except BaseException:
        for writer in writers.values():
            writer.discard()
        raise
    # second pass over the train split (from memory when it was written in one chunk; all
    # columns, as selecting the features would copy them)
    for chunk in iter_chunks(train_file, None, chunk_rows):
        statistics.add_histograms(chunk)
        del chunk
    meta = {
        "features": features,
        "label": label,
        "rows_train": writers["train"].rows,
        "rows_test": writers["test"].rows,
        "test_size": test_size,
        "seed": seed,
        "chunk_rows": chunk_rows,
        "chunks": chunks,
        "data_hash": digest,
    }
    write_json(train_dir / "schema.json", meta)
    write_json(test_dir / "schema.json", meta)
    write_json(
        baseline_dir / "baseline.json",
        {"data_hash": digest, "rows": writers["train"].rows, "features": statistics.result()},
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
    parser.add_argument(
        "--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows held at a time"
    )
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
            chunk_rows=args.chunk_rows,
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
