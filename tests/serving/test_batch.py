"""Local batch scoring: chunking with bounded memory, rejects with reasons, byte-identical
re-runs, CSV and Parquet, nothing left behind on failure, and the CLI."""

from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.batch import BatchError, ScoringModel, iter_chunks, load_model, score_file
from pipelines.data import LABEL, synthetic
from pipelines.local import RunResult
from tests.serving.conftest import MODEL, register_copy

ROWS = 1050


@pytest.fixture(scope="module")
def model(run: RunResult) -> ScoringModel:
    return load_model(run.tracking_uri, MODEL)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic(ROWS, seed=3)


@pytest.fixture
def csv_file(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "in.csv"
    frame.to_csv(path, index=False)
    return path


def test_champion_is_loaded_with_the_contract_rules(model: ScoringModel) -> None:
    assert model.version == "1"
    assert len(model.features) == 30 and LABEL not in model.features
    radius = next(r for r in model.rules if r.name == "mean_radius")
    assert radius.minimum == 0.0 and radius.maximum is not None


def test_reader_yields_ceil_n_over_chunk_rows_chunks_and_holds_one_at_a_time(
    csv_file: Path,
) -> None:
    sizes, alive_counts, refs = [], [], []
    # A full collection walks every object the worker holds (cached plans, SDKs): seconds
    # each. Objects older than this test cannot be the reader's chunks, so freeze them and let
    # each collection walk only what the reader made.
    gc.collect()
    gc.freeze()
    try:
        for chunk in iter_chunks(csv_file, 100):
            sizes.append(len(chunk.frame))
            refs.append(weakref.ref(chunk.frame))
            del chunk
            gc.collect()
            alive_counts.append(sum(r() is not None for r in refs))
    finally:
        gc.unfreeze()
    assert sizes == [100] * 10 + [50]
    # once the consumer lets a chunk go, the reader keeps no reference to it
    assert max(alive_counts) == 0


def test_scoring_runs_chunk_by_chunk_and_scores_every_row(
    model: ScoringModel, csv_file: Path, tmp_path: Path, frame: pd.DataFrame
) -> None:
    seen: list[int] = []
    result = score_file(
        model,
        csv_file,
        tmp_path / "out.csv",
        chunk_rows=100,
        progress=False,
        on_chunk=lambda c: seen.append(len(c.frame)),
    )
    assert result.chunks == 11 and seen == [100] * 10 + [50]
    assert result.max_chunk_rows == 100
    assert (result.rows_scored, result.rows_rejected) == (ROWS, 0)
    out = pd.read_csv(tmp_path / "out.csv")
    assert out["row"].tolist() == list(range(ROWS))
    expected = model.estimator.predict_proba(frame[model.features])[:, 1]
    np.testing.assert_allclose(out["probability"], expected, rtol=1e-9)
    assert set(out["prediction"]) <= {0, 1}
    assert pd.read_csv(tmp_path / "out.rejects.csv").empty


def _bad_csv(tmp_path: Path, frame: pd.DataFrame) -> tuple[Path, dict[int, str]]:
    bad = frame.copy()
    bad.loc[7, "mean_radius"] = np.nan
    bad.loc[150, "mean_texture"] = -2.0
    bad = bad.astype({"mean_area": object})
    bad.loc[420, "mean_area"] = "abc"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    lines[1 + 333] += ",1,2"  # record 333 gets two extra fields
    path.write_text("\n".join(lines) + "\n")
    expected = {
        7: "column 'mean_radius': missing value",
        150: "column 'mean_texture': below the contract's min 0 (-2.0)",
        333: "malformed CSV line 335: expected 31 fields, saw 33",
        420: "column 'mean_area': not a number (abc)",
    }
    return path, expected


def test_bad_rows_go_to_the_rejects_file_with_their_reason(
    model: ScoringModel, tmp_path: Path, frame: pd.DataFrame
) -> None:
    path, expected = _bad_csv(tmp_path, frame)
    result = score_file(model, path, tmp_path / "out.csv", chunk_rows=100, progress=False)
    rejects = pd.read_csv(tmp_path / "out.rejects.csv", keep_default_na=False)
    assert dict(zip(rejects["row"], rejects["reason"], strict=True)) == expected
    assert json.loads(rejects.loc[rejects["row"] == 7, "values"].item())["mean_radius"] is None
    out = pd.read_csv(tmp_path / "out.csv")
    # nothing dropped silently: every record is in exactly one of the two files
    assert sorted([*out["row"], *rejects["row"]]) == list(range(ROWS))
    assert (result.rows_scored, result.rows_rejected) == (ROWS - 4, 4)
    # rows after the malformed line keep their own record number
    expected_p = model.estimator.predict_proba(frame.loc[[334, 1049], model.features])[:, 1]
    got = out.set_index("row").loc[[334, 1049], "probability"].to_numpy()
    np.testing.assert_allclose(got, expected_p, rtol=1e-9)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_rerun_gives_byte_identical_output(
    model: ScoringModel, tmp_path: Path, frame: pd.DataFrame, suffix: str
) -> None:
    path, _ = _bad_csv(tmp_path, frame)
    out = tmp_path / f"out{suffix}"
    score_file(model, path, out, chunk_rows=128, keep=(LABEL,), progress=False)
    first, first_rejects = out.read_bytes(), (tmp_path / "out.rejects.csv").read_bytes()
    score_file(model, path, out, chunk_rows=128, keep=(LABEL,), progress=False)
    assert out.read_bytes() == first
    assert (tmp_path / "out.rejects.csv").read_bytes() == first_rejects
    assert len(pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)) == ROWS - 4


def test_parquet_input_is_read_in_row_batches(
    model: ScoringModel, tmp_path: Path, frame: pd.DataFrame
) -> None:
    bad = frame.copy()
    bad.loc[5, "worst_area"] = np.nan
    path = tmp_path / "in.parquet"
    bad.to_parquet(path, index=False)
    result = score_file(model, path, tmp_path / "out.parquet", chunk_rows=250, progress=False)
    assert result.chunks == 5 and result.max_chunk_rows == 250
    rejects = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejects["row"].tolist() == [5]
    assert "worst_area" in rejects["reason"].item()
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == ROWS - 1


def test_a_missing_feature_column_fails_and_leaves_nothing_behind(
    model: ScoringModel, tmp_path: Path, frame: pd.DataFrame
) -> None:
    path = tmp_path / "in.csv"
    frame.drop(columns=["mean_radius", "worst_area"]).to_csv(path, index=False)
    out_dir = tmp_path / "out"
    with pytest.raises(BatchError, match=r"'mean_radius', 'worst_area'.*fix the file's header"):
        score_file(model, path, out_dir / "scored.csv", chunk_rows=100, progress=False)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [("in.txt", r"suffix '.txt'.*\.csv or \.parquet"), ("missing.csv", "does not exist")],
)
def test_bad_input_paths_are_named(
    model: ScoringModel, tmp_path: Path, name: str, message: str
) -> None:
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("a,b\n1,2\n")
    with pytest.raises(BatchError, match=message):
        score_file(model, path, tmp_path / "o.csv", chunk_rows=100, progress=False)


def test_cli_scores_with_the_stack_champion(run: RunResult, tmp_path: Path, csv_file: Path) -> None:
    from mlops.cli_serving import app

    home = tmp_path / "home"
    register_copy(run, home, "acme-classifier")
    result = CliRunner().invoke(
        app,
        [
            "batch", "score", "--stack", "acme-dev", "--input", str(csv_file),
            "--output", str(tmp_path / "o.parquet"), "--chunk-rows", "300",
            "--workdir", str(home), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model_name"] == "acme-classifier" and summary["chunks"] == 4
    assert summary["rows_in"] == ROWS == summary["rows_scored"]


def test_cli_without_a_registry_says_how_to_get_one(tmp_path: Path, csv_file: Path) -> None:
    from mlops.cli_serving import app

    result = CliRunner().invoke(
        app,
        ["batch", "score", "--stack", "acme-dev", "--input", str(csv_file),
         "--output", str(tmp_path / "o.csv"), "--workdir", str(tmp_path / "none")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no local registry" in result.output and "mlops pipeline run" in result.output
