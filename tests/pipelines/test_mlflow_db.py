"""A new sqlite MLflow store seeded from the migrated empty schema (`pipelines/steps/_mlflow_db`)
is the database MLflow would have created, and anything else is left to MLflow."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipelines.steps import _mlflow_db


def _schema(path: Path) -> dict[str, object]:
    """Tables with their columns, indexes by table, and the alembic revision."""
    db = sqlite3.connect(path)
    try:
        tables = [
            r[0] for r in db.execute("select name from sqlite_master where type='table'").fetchall()
        ]
        return {
            "columns": {
                t: sorted(tuple(c[1:]) for c in db.execute(f"pragma table_info('{t}')"))
                for t in tables
            },
            "indexes": sorted(
                db.execute("select name, tbl_name from sqlite_master where type='index'").fetchall()
            ),
            "revision": db.execute("select version_num from alembic_version").fetchall(),
        }
    finally:
        db.close()


def test_a_seeded_store_has_the_schema_mlflow_creates_and_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow puts the Default experiment's artifacts under the cwd
    fresh, seeded = tmp_path / "fresh.db", tmp_path / "seeded" / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{fresh}").search_experiments()
    _mlflow_db.seed_sqlite_store(f"sqlite:///{seeded}")
    assert seeded.is_file()
    assert _schema(seeded) == _schema(fresh)
    client = MlflowClient(tracking_uri=f"sqlite:///{seeded}", registry_uri=f"sqlite:///{seeded}")
    assert [e.name for e in client.search_experiments()] == ["Default"]
    client.create_registered_model("m")
    run = client.create_run(client.create_experiment("e", artifact_location=tmp_path.as_uri()))
    version = client.create_model_version("m", "runs:/x/model", run_id=run.info.run_id)
    assert str(version.version) == "1"
    assert not list(seeded.parent.glob(".*seeding"))  # no partial file left behind


@pytest.mark.parametrize(
    "uri",
    ["file:///tmp/mlruns", "sqlite:///relative.db", "sqlite:////abs/x.db?timeout=5"],
    ids=["not-sqlite", "relative", "query"],
)
def test_other_uris_are_left_to_mlflow(
    uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _mlflow_db.seed_sqlite_store(uri)
    assert not list(tmp_path.iterdir())
    assert not Path("/abs/x.db").exists()


def test_an_existing_store_is_not_touched(tmp_path: Path) -> None:
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"not replaced")
    _mlflow_db.seed_sqlite_store(f"sqlite:///{store}")
    assert store.read_bytes() == b"not replaced"


def test_a_cleaned_up_template_is_built_again(tmp_path: Path) -> None:
    _mlflow_db.seed_sqlite_store(f"sqlite:///{tmp_path / 'a.db'}")
    template = _mlflow_db._empty_store()
    assert template is not None
    shutil.rmtree(template.parent)  # a tmp cleaner removed it under a long-running process
    _mlflow_db.seed_sqlite_store(f"sqlite:///{tmp_path / 'b.db'}")
    assert _schema(tmp_path / "b.db") == _schema(tmp_path / "a.db")
