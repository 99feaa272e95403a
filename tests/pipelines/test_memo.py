"""Inside one local run each table is read once and each file hashed once; outside a run
nothing is remembered. Splits are Parquet, and the split readers still take a CSV folder."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.steps import _common
from pipelines.steps._common import (
    data_hash,
    hash_path,
    load_contract,
    read_split,
    read_table,
    run_memo,
)
from pipelines.steps.prepare import prepare
from pipelines.steps.validate import validate


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """File name -> how many times a table file was read from disk."""
    counts: Counter = Counter()
    real = _common._read_file

    def counting(file: Path, columns: list[str] | None) -> pd.DataFrame:
        counts[Path(file).name] += 1
        return real(file, columns)

    monkeypatch.setattr(_common, "_read_file", counting)
    return counts


@pytest.fixture
def batch(tmp_path: Path, good_frame: pd.DataFrame) -> Path:
    path = tmp_path / "batch.parquet"
    good_frame.to_parquet(path, index=False)
    return path


def _prepare(batch: Path, root: Path) -> dict:
    return prepare(
        batch,
        None,
        contract=load_contract(""),
        test_size=0.25,
        seed=42,
        train_dir=root / "train",
        test_dir=root / "test",
        baseline_dir=root / "baseline",
    )


def test_inside_a_run_the_batch_is_read_once_and_the_splits_are_handed_on(
    batch: Path, tmp_path: Path, reads: Counter
) -> None:
    contract = load_contract("")
    with run_memo():
        report = validate(batch, contract=contract, baseline=None, drift_threshold=0.2)
        meta = _prepare(batch, tmp_path / "out")
        columns = [*meta["features"], meta["label"]]
        train = read_split(tmp_path / "out" / "train", columns)
        test = read_split(tmp_path / "out" / "test", columns)
    assert report["status"] == "passed"
    assert reads == Counter({"batch.parquet": 1})  # the splits came from memory
    # ...and are what is on disk, Parquet, with the features then the label and no index
    for part, frame in (("train", train), ("test", test)):
        on_disk = pd.read_parquet(tmp_path / "out" / part / "data.parquet")
        pd.testing.assert_frame_equal(frame, on_disk)
        assert list(on_disk.columns) == columns
        assert not (tmp_path / "out" / part / "data.csv").exists()
    assert len(train) == meta["rows_train"] and len(test) == meta["rows_test"]


def test_outside_a_run_a_rewritten_file_is_read_again(
    batch: Path, good_frame: pd.DataFrame, reads: Counter
) -> None:
    first = read_table(batch)
    changed = good_frame.assign(mean_radius=good_frame["mean_radius"] + 1.0)
    changed.to_parquet(batch, index=False)
    second = read_table(batch)
    assert reads == Counter({"batch.parquet": 2})
    assert np.allclose(second["mean_radius"] - first["mean_radius"], 1.0)


def test_inside_a_run_each_file_is_hashed_once_with_the_same_result(
    batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected_data, expected_folder = data_hash(batch), hash_path(batch.parent)
    calls: Counter = Counter()
    real = hashlib.file_digest

    def counting(fh, digest):  # noqa: ANN001 - hashlib's signature
        calls[Path(fh.name).name] += 1
        return real(fh, digest)

    monkeypatch.setattr(_common.hashlib, "file_digest", counting)
    with run_memo():
        assert data_hash(batch) == expected_data
        assert data_hash(batch) == expected_data
        assert hash_path(batch.parent) == expected_folder
    assert calls == Counter({"batch.parquet": 1})
    # the format: per file, its name and the sha256 of its content
    inner = hashlib.sha256(batch.read_bytes()).digest()
    assert expected_data == hashlib.sha256(b"batch.parquet" + inner).hexdigest()


def test_a_split_folder_with_data_csv_still_reads(tmp_path: Path, good_frame: pd.DataFrame) -> None:
    folder = tmp_path / "legacy"
    folder.mkdir()
    good_frame.to_csv(folder / "data.csv", index=False)
    frame = read_split(folder, ["mean_radius", "target"])
    assert list(frame.columns) == ["mean_radius", "target"] and len(frame) == len(good_frame)
    with pytest.raises(_common.StepError, match="no data.parquet or data.csv in"):
        read_split(tmp_path / "missing")
