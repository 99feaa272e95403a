"""The data steps read the batch and the splits in chunks (issue #18: 10M rows in bounded
memory): validation, split, baseline statistics, training sample, scoring and ONNX parity give
the results of a one-piece read, or the documented ones, on a small batch written with tiny
Parquet row groups so that every chunk boundary is crossed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.model_selection import train_test_split

from core.config import ConfigError, validate_settings
from pipelines import explain
from pipelines.data import synthetic
from pipelines.definition import PipelineSettings, SettingsError
from pipelines.steps import _common
from pipelines.steps import evaluate as evaluate_step
from pipelines.steps import prepare as prepare_step
from pipelines.steps import train as train_step
from pipelines.steps._common import StepError, iter_chunks, load_contract, run_memo
from pipelines.steps.onnx_parity import export_model
from pipelines.steps.register import lineage
from pipelines.steps.stats import (
    HISTOGRAM_BINS,
    KS_EXACT_ROWS,
    FeatureDrift,
    drift_report,
    feature_statistics,
)
from pipelines.steps.validate import contract_problems, validate

ROWS, ROW_GROUP, CHUNK = 5_000, 500, 700
"""5,000 rows in row groups of 500, read in chunks of 700: chunks straddle row groups."""
CONTRACT = load_contract("")
LABEL = CONTRACT["label"]["column"]
FEATURES = [c for c in CONTRACT["columns"] if c != LABEL]


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False, row_group_size=ROW_GROUP)
    return path


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic(ROWS, seed=3)


@pytest.fixture(scope="module")
def prepared(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The batch split in chunks of 700 rows, and the folders prepare wrote."""
    root = tmp_path_factory.mktemp("prepared")
    batch = _write(frame, root / "batch.parquet")
    meta = _prepare(batch, root, CHUNK)
    return {"root": root, "batch": batch, "meta": meta}


def _prepare(batch: Path, root: Path, chunk_rows: int, seed: int = 42) -> dict:
    return prepare_step.prepare(
        batch,
        None,
        contract=CONTRACT,
        test_size=0.25,
        seed=seed,
        train_dir=root / "train",
        test_dir=root / "test",
        baseline_dir=root / "baseline",
        chunk_rows=chunk_rows,
    )


def _split(root: Path, part: str) -> pd.DataFrame:
    return pd.read_parquet(root / part / "data.parquet")


def test_chunks_have_exactly_chunk_rows_and_global_row_numbers(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    _write(frame.iloc[:2_300], folder / "a.parquet")
    frame.iloc[2_300:3_000].to_csv(folder / "b.csv", index=False)
    _write(frame.iloc[3_000:], folder / "c.parquet")
    chunks = list(iter_chunks(folder, ["mean_radius", LABEL], CHUNK))
    assert [len(c) for c in chunks] == [700] * 7 + [100]
    assert [c.index[0] for c in chunks] == list(range(0, ROWS, 700))
    whole = pd.concat(chunks)
    assert list(whole.index) == list(range(ROWS))
    np.testing.assert_allclose(whole["mean_radius"], frame["mean_radius"])
    with pytest.raises(StepError, match=r"a\.parquet lacks the column\(s\) nope"):
        list(iter_chunks(folder, ["mean_radius", "nope"], CHUNK))
    with pytest.raises(StepError, match=r"b\.csv lacks the column\(s\) nope"):
        list(iter_chunks(folder / "b.csv", ["mean_radius", "nope"], 300))


def test_inside_a_run_a_small_csv_batch_is_read_once(
    frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = _common._file_pieces

    def counting(file: Path, columns: list[str] | None, rows: int):  # noqa: ANN202
        reads.append(Path(file).name)
        return real(file, columns, rows)

    monkeypatch.setattr(_common, "_file_pieces", counting)
    batch = tmp_path / "batch.csv"
    frame.iloc[:1_000].to_csv(batch, index=False)
    with run_memo():
        report = validate(batch, contract=CONTRACT, baseline=None, drift_threshold=0.2)
        meta = _prepare(batch, tmp_path / "out", chunk_rows=CHUNK * 10)
    assert report["status"] == "passed" and meta["rows_train"] + meta["rows_test"] == 1_000
    assert reads == ["batch.csv"]


def test_validation_finds_failures_in_every_chunk_with_their_row_numbers(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    bad = frame.copy()
    bad.loc[[3, 1_234, 4_999], "mean_smoothness"] = -1.0  # chunks 0, 1 and 7
    bad.loc[[2_500, 2_501], "worst_area"] = None  # row group 5, chunk 3
    bad.loc[[699, 700], LABEL] = 7  # the last row of chunk 0 and the first of chunk 1
    batch = _write(bad, tmp_path / "bad.parquet")
    report = validate(
        batch, contract=CONTRACT, baseline=None, drift_threshold=0.2, chunk_rows=CHUNK
    )
    found = {p["column"]: p for p in report["problems"]}
    assert report["status"] == "failed" and report["rows"] == ROWS
    assert found["mean_smoothness"]["rows"] == 3
    assert found["mean_smoothness"]["row_numbers"] == [3, 1_234, 4_999]
    assert found["mean_smoothness"]["examples"] == [-1.0, -1.0, -1.0]
    assert found["worst_area"]["rule"] == "nulls not allowed"
    assert found["worst_area"]["row_numbers"] == [2_500, 2_501]
    assert found[LABEL]["row_numbers"] == [699, 700] and found[LABEL]["rows"] == 2
    assert "first at row(s) [3, 1234, 4999]" in found["mean_smoothness"]["message"]
    # the same problems as one pandera pass over the whole batch
    whole = contract_problems(bad, CONTRACT)
    assert sorted((p["column"], p["rule"], p["rows"]) for p in whole) == sorted(
        (p["column"], p["rule"], p["rows"]) for p in report["problems"]
    )


def test_a_missing_column_is_reported_once_for_the_whole_batch(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    batch = _write(frame.drop(columns="mean_radius"), tmp_path / "b.parquet")
    report = validate(
        batch, contract=CONTRACT, baseline=None, drift_threshold=0.2, chunk_rows=CHUNK
    )
    missing = [p for p in report["problems"] if p["column"] == "mean_radius"]
    assert [(p["rule"], p["rows"]) for p in missing] == [("required column missing", 1)]


def test_drift_over_chunks_equals_drift_of_the_whole_batch(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    baseline = {"features": {n: feature_statistics(frame[n]) for n in FEATURES}}
    shifted = synthetic(ROWS, seed=4, shift=0.3)
    batch = _write(shifted, tmp_path / "shifted.parquet")
    report = validate(
        batch, contract=CONTRACT, baseline=baseline, drift_threshold=0.2, chunk_rows=CHUNK
    )
    assert report["drift"] == drift_report(shifted, baseline, 0.2)
    assert report["drift"]["features"]["mean_radius"]["psi"] > 0.02


def test_streamed_ks_statistic_is_scipys_above_the_exact_limit() -> None:
    rng = np.random.default_rng(0)
    reference = feature_statistics(pd.Series(rng.gamma(2.0, 3.0, 4_000)))
    values = np.round(rng.gamma(2.0, 3.3, KS_EXACT_ROWS + 2_000), 1)  # ties included
    drift = FeatureDrift(reference)
    for part in np.array_split(values, 7):
        drift.add(part)
    assert drift.kept is None  # too many rows to keep: the statistic comes from the counts
    expected = ks_2samp(values, reference["quantiles"])
    result = drift.result(0.2)
    assert drift.ks_statistic() == expected.statistic
    assert result["ks_pvalue"] == pytest.approx(float(expected.pvalue), rel=1e-12)


def test_the_split_is_deterministic_disjoint_and_covers_every_row(
    prepared: dict, frame: pd.DataFrame, tmp_path: Path
) -> None:
    root, meta = prepared["root"], prepared["meta"]
    train, test = _split(root, "train"), _split(root, "test")
    columns = [*FEATURES, LABEL]
    assert list(train.columns) == columns and list(test.columns) == columns
    # each of the 8 chunks (7 of 700, one of 100) holds out ceil(25 %) of its rows
    assert (meta["rows_train"], meta["rows_test"], meta["chunks"]) == (3_750, 1_250, 8)
    both = pd.concat([train, test], ignore_index=True).sort_values(columns, ignore_index=True)
    pd.testing.assert_frame_equal(both, frame[columns].sort_values(columns, ignore_index=True))
    assert not frame[columns].duplicated().any()  # so equal multisets mean disjoint splits
    again = _prepare(prepared["batch"], tmp_path / "again", CHUNK)
    assert again == meta
    pd.testing.assert_frame_equal(_split(tmp_path / "again", "train"), train)
    other = _prepare(prepared["batch"], tmp_path / "other", CHUNK, seed=7)
    assert not _split(tmp_path / "other", "test").equals(test)
    assert other["rows_test"] == meta["rows_test"]
    # the first chunk splits as scikit-learn splits it on its own, with the seed itself
    first_train, _ = train_test_split(
        frame[columns].iloc[:CHUNK], test_size=0.25, random_state=42, stratify=frame[LABEL][:CHUNK]
    )
    pd.testing.assert_frame_equal(
        train.iloc[: len(first_train)], first_train.reset_index(drop=True)
    )


def test_a_batch_of_one_chunk_splits_as_one_train_test_split(
    prepared: dict, frame: pd.DataFrame, tmp_path: Path
) -> None:
    _prepare(prepared["batch"], tmp_path, chunk_rows=ROWS)
    columns = [*FEATURES, LABEL]
    train, test = train_test_split(
        frame[columns], test_size=0.25, random_state=42, stratify=frame[LABEL]
    )
    pd.testing.assert_frame_equal(_split(tmp_path, "train"), train.reset_index(drop=True))
    pd.testing.assert_frame_equal(_split(tmp_path, "test"), test.reset_index(drop=True))


def test_baseline_statistics_merged_from_chunks_equal_one_pass(prepared: dict) -> None:
    root = prepared["root"]
    baseline = json.loads((root / "baseline" / "baseline.json").read_text())
    train = _split(root, "train")
    assert baseline["rows"] == len(train) == 3_750
    for name in FEATURES:
        merged, once = baseline["features"][name], feature_statistics(train[name])
        for key in ("edges", "proportions", "quantiles"):
            assert merged[key] == once[key], (name, key)
        assert merged["mean"] == pytest.approx(train[name].mean(), rel=1e-12)
        assert merged["std"] == pytest.approx(train[name].std(ddof=0), rel=1e-12)
        # the histogram's quantiles are within a bin width of the exact ones
        values = train[name].to_numpy()
        width = (values.max() - values.min()) / HISTOGRAM_BINS
        exact = np.quantile(values, np.linspace(0, 1, 101))
        assert np.max(np.abs(np.asarray(merged["quantiles"]) - exact)) <= width
        assert (merged["quantiles"][0], merged["quantiles"][-1]) == (values.min(), values.max())
        assert sum(merged["proportions"]) == pytest.approx(1.0)
    # the proportions are exact counts between the edges: the split has no drift from itself
    drift = drift_report(train, baseline, threshold=0.2)
    assert {f["psi"] for f in drift["features"].values()} == {0.0}


def test_a_bad_batch_leaves_no_split_that_looks_complete(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "batch"
    _write(frame.iloc[:3_000], folder / "a.parquet")
    _write(frame.iloc[3_000:].drop(columns="worst_area"), folder / "b.parquet")
    out = tmp_path / "out"
    with pytest.raises(StepError, match=r"b\.parquet lacks the column\(s\) worst_area"):
        _prepare(folder, out, CHUNK)  # fails after four chunks were split and written
    for part in ("train", "test"):
        assert list((out / part).iterdir()) == []
    assert not (out / "baseline").exists()
    code = prepare_step.main(
        [
            "--data",
            str(folder),
            "--train-dir",
            str(out / "train"),
            "--test-dir",
            str(out / "test"),
            "--baseline-dir",
            str(out / "baseline"),
            "--chunk-rows",
            str(CHUNK),
        ]
    )
    assert code == 2 and list((out / "train").iterdir()) == []


def _model(prepared: dict, tmp_path: Path, max_rows: int) -> tuple[Path, dict]:
    model = tmp_path / f"model-{max_rows}"
    info = train_step.train(
        prepared["root"] / "train",
        model,
        trainer="pipelines.model:build_model",
        hyperparameters={},
        seed=42,
        max_rows=max_rows,
    )
    return model, info


@pytest.fixture(scope="module")
def sampled(prepared: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A model fitted with max_rows=1,000 on the 3,750-row train split."""
    return _model(prepared, tmp_path_factory.mktemp("sampled"), max_rows=1_000)


def test_the_trainer_fits_on_a_seeded_sample_of_max_rows_and_records_it(
    prepared: dict, sampled: tuple[Path, dict], tmp_path: Path
) -> None:
    import mlflow.sklearn

    model, info = sampled
    assert info["rows"] == 1_000 and info["rows_available"] == 3_750
    assert info["sample"]["sampled"] is True and info["sample"]["max_rows"] == 1_000
    assert json.loads((model / "training.json").read_text())["sample"] == info["sample"]
    scaler = mlflow.sklearn.load_model(str(model)).steps[0][1]
    assert scaler.n_samples_seen_ == 1_000
    train = _split(prepared["root"], "train")
    picked = train.iloc[train_step.sample_positions(len(train), 1_000, 42)]
    np.testing.assert_allclose(scaler.mean_, picked[FEATURES].mean().to_numpy())
    # at or above the split's size nothing changes: every row
    whole_model, whole = _model(prepared, tmp_path, max_rows=3_750)
    assert whole["rows"] == 3_750 and whole["sample"]["sampled"] is False
    assert mlflow.sklearn.load_model(str(whole_model)).steps[0][1].n_samples_seen_ == 3_750


def test_the_sample_reaches_the_lineage_of_the_version(
    sampled: tuple[Path, dict], tmp_path: Path
) -> None:
    model, _ = sampled
    for folder, name, payload in (
        ("evaluation", "evaluation.json", {"metrics": {"roc_auc": 0.99}}),
        ("gate", "gate.json", {"passed": True}),
        ("report", "report.json", {"data_hash": "d" * 64}),
    ):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text(json.dumps(payload))
    facts = lineage(model, tmp_path / "evaluation", tmp_path / "gate", tmp_path / "report", "r1")
    assert facts["training_rows"] == 1_000
    assert facts["training_sample"]["sampled"] is True
    assert facts["training_sample"]["rows_available"] == 3_750
    assert facts["parameters"]["train_rows"] == 1_000
    assert facts["parameters"]["train_max_rows"] == 1_000


def test_scoring_in_chunks_gives_the_evaluation_of_a_one_piece_read(
    prepared: dict, sampled: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = sampled
    test = prepared["root"] / "test"
    # permutation importance on a sample of 500 of the 1,250 test rows, drawn while reading
    monkeypatch.setattr(explain, "MAX_ROWS", 500)
    one = evaluate_step.evaluate(model, test, tmp_path / "one", permutation_repeats=2)
    chunked = evaluate_step.evaluate(
        model, test, tmp_path / "chunked", permutation_repeats=2, chunk_rows=300
    )
    assert chunked["chunk_rows"] == 300 and one["rows"] == chunked["rows"] == 1_250
    for key in ("metrics", "confusion_matrix", "feature_importance"):
        assert chunked[key] == one[key], key
    assert chunked["feature_importance"]["rows"] == 500
    assert (tmp_path / "chunked" / "roc_curve.png").read_bytes()[:4] == b"\x89PNG"
    # ONNX parity over chunks: every row checked, the same largest difference
    whole = export_model(model, test, tmp_path / "onnx-one", tolerance=1e-4)
    parts = export_model(model, test, tmp_path / "onnx-parts", tolerance=1e-4, chunk_rows=300)
    assert parts.rows == whole.rows == 1_250
    assert parts.max_abs_diff == whole.max_abs_diff and parts.exportable


@pytest.mark.parametrize(
    ("change", "field", "shown"),
    [
        ({"chunk_rows": 10}, "training.chunk_rows=10", "training.chunkRows"),
        ({"chunk_rows": 1.5}, "training.chunk_rows=1.5", "whole number"),
        ({"max_train_rows": 0}, "training.max_rows=0", "training.maxRows"),
    ],
)
def test_bad_bounds_name_the_setting_its_value_the_range_and_the_fix(
    change: dict, field: str, shown: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        PipelineSettings().replace(**change)
    assert field in str(caught.value) and shown in str(caught.value)
    assert "within [" in str(caught.value)


def test_stack_config_carries_the_bounds_into_the_pipeline() -> None:
    from pipelines.definition import pipeline_settings_from_stack

    base = {"mlops:blueprint": "sagemaker", "mlops:client": "acme", "mlops:environment": "dev"}
    stack = validate_settings(
        {**base, "mlops:training": {"chunkRows": 200_000, "maxRows": 500_000}}, stack="acme-dev"
    )
    settings = pipeline_settings_from_stack(stack)
    assert (settings.chunk_rows, settings.max_train_rows) == (200_000, 500_000)
    default = pipeline_settings_from_stack(validate_settings(base, stack="acme-dev"))
    assert (default.chunk_rows, default.max_train_rows) == (1_000_000, 1_000_000)
    with pytest.raises(ConfigError) as caught:
        validate_settings({**base, "mlops:training": {"chunkRows": 5}}, stack="acme-dev")
    (problem,) = [str(p) for p in caught.value.problems]
    assert "mlops:training.chunkRows=5" in problem and "greater than or equal to 100" in problem
    assert "set training.chunkRows in Pulumi.acme-dev.yaml" in problem
