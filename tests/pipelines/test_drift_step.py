"""The scheduled drift check (`python -m pipelines.steps.drift`) on captures in every shape the
kit's endpoints write, against a baseline made by the prepare step's own statistics."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipelines.data import breast_cancer, synthetic
from pipelines.steps import drift
from pipelines.steps.validate import feature_statistics

FEATURES = ["mean_radius", "mean_texture", "mean_area"]


@pytest.fixture(scope="module")
def baseline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = breast_cancer()
    path = tmp_path_factory.mktemp("baseline")
    (path / "baseline.json").write_text(
        json.dumps(
            {"rows": len(frame), "features": {n: feature_statistics(frame[n]) for n in FEATURES}}
        )
    )
    return path


def _write_captures(root: Path, rows: list[dict]) -> None:
    """The same rows in the three request shapes, plus a response and a broken line."""
    root.mkdir(parents=True, exist_ok=True)
    third = len(rows) // 3
    local, kserve, raw = rows[:third], rows[third : 2 * third], rows[2 * third :]
    with open(root / "capture-1.jsonl", "w") as fh:  # the local router's records
        for row in local:
            fh.write(
                json.dumps(
                    {
                        "request": json.dumps({"dataframe_records": [row]}),
                        "content_type": "application/json",
                        "version": "1",
                    }
                )
                + "\n"
            )
        fh.write(json.dumps({"predictions": [1]}) + "\n")  # a response: skipped
    # KServe logger events via Vector (gzipped): the payload is in `data`
    with gzip.open(root / "events.jsonl.gz", "wt") as fh:
        for row in kserve:
            fh.write(
                json.dumps(
                    {
                        "ce-type": "org.kubeflow.serving.inference.request",
                        "data": json.dumps({"instances": [row]}),
                    }
                )
                + "\n"
            )
        fh.write(
            json.dumps(
                {
                    "ce-type": "org.kubeflow.serving.inference.response",
                    "data": json.dumps({"predictions": [0]}),
                }
            )
            + "\n"
        )
    with open(root / "raw.json", "w") as fh:  # bare payloads
        cols = list(raw[0])
        fh.write(
            json.dumps(
                {"dataframe_split": {"columns": cols, "data": [[r[c] for c in cols] for r in raw]}}
            )
        )
        fh.write("\n{not json\n")


def _rows(shift: float, n: int = 300) -> list[dict]:
    return synthetic(n, seed=3, shift=shift)[FEATURES].to_dict("records")


def _run(tmp_path: Path, baseline: Path, captures: Path) -> tuple[int, dict]:
    out = tmp_path / "report"
    code = drift.main(
        [
            "--captures",
            str(captures),
            "--baseline",
            str(baseline),
            "--threshold",
            "0.2",
            "--report-dir",
            str(out),
        ]
    )
    report = json.loads((out / "drift_report.json").read_text()) if code == 0 else {}
    if code == 0:
        assert float((out / "max_psi").read_text()) == report["max_psi"]
    return code, report


def test_similar_traffic_in_every_shape_does_not_drift(tmp_path, baseline_dir) -> None:
    rows = _rows(0.0)
    _write_captures(tmp_path / "captures", rows)
    code, report = _run(tmp_path, baseline_dir, tmp_path / "captures")
    assert code == 0
    assert report["rows"] == len(rows)  # every request read, responses skipped
    assert report["unreadable_lines"] == 1
    assert report["drifted"] == [] and report["max_psi"] < 0.2


def test_shifted_traffic_drifts_and_names_the_features(tmp_path, baseline_dir) -> None:
    _write_captures(tmp_path / "captures", _rows(2.0))
    code, report = _run(tmp_path, baseline_dir, tmp_path / "captures")
    assert code == 0  # drift is a finding for the metric, not a failed job
    assert set(report["drifted"]) == set(FEATURES)
    assert report["max_psi"] > 0.2


def test_no_captures_reports_no_data(tmp_path, baseline_dir) -> None:
    code, report = _run(tmp_path, baseline_dir, tmp_path / "nothing-here")
    assert (code, report["status"], report["max_psi"], report["rows"]) == (0, "no-data", 0.0, 0)


def test_missing_baseline_fails_with_the_fix(tmp_path, capsys) -> None:
    code = drift.main(
        [
            "--captures",
            str(tmp_path),
            "--baseline",
            str(tmp_path / "none"),
            "--threshold",
            "0.2",
            "--report-dir",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "no baseline.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_captures_of_another_model_are_refused(tmp_path, baseline_dir) -> None:
    root = tmp_path / "captures"
    root.mkdir()
    (root / "c.jsonl").write_text(json.dumps({"instances": [{"other": 1.0}]}) + "\n")
    code = drift.main(
        [
            "--captures",
            str(root),
            "--baseline",
            str(baseline_dir),
            "--threshold",
            "0.2",
            "--report-dir",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
