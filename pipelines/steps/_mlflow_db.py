"""A new sqlite MLflow store starts as a copy of an empty, fully migrated database.

MLflow creates a sqlite store by running every one of its schema migrations (alembic, about a
hundred scripts): 2-5 s for each new registry. The migrated empty schema is the same for every
store of one MLflow version, so a process builds it once (in a private temporary directory) and
each new store is a copy. MLflow then opens the copy as it opens any current database: it checks
the schema revision and creates the Default experiment with the store's own artifact root, as
it does on a fresh one. Anything other than a sqlite file that does not exist yet is left to
MLflow, and so is everything when the empty schema cannot be built.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

SQLITE = "sqlite:///"


@functools.cache
def _empty_store() -> Path | None:
    """An empty MLflow sqlite database with every migration applied (no experiment yet)."""
    try:
        from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine
    except ImportError:  # another MLflow layout: MLflow migrates each new store itself
        return None
    folder = Path(tempfile.mkdtemp(prefix="mlops-mlflow-schema-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "empty.db"
    engine = create_sqlalchemy_engine(f"{SQLITE}{path}")
    try:
        _initialize_tables(engine)
    except Exception:  # noqa: BLE001 - MLflow migrates each new store itself, as before
        return None
    finally:
        engine.dispose()
    return path


def seed_sqlite_store(tracking_uri: str) -> None:
    """Create the sqlite database of `tracking_uri` from the migrated empty schema when it does
    not exist yet; any other URI, or an existing file, is left as it is."""
    if not tracking_uri.startswith(SQLITE):
        return
    path = Path(tracking_uri.removeprefix(SQLITE))
    if "?" in tracking_uri or not path.is_absolute() or path.exists():
        return
    empty = _empty_store()
    if empty is not None and not empty.exists():  # its temporary directory was cleaned up
        _empty_store.cache_clear()
        empty = _empty_store()
    if empty is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.seeding")
    try:
        shutil.copyfile(empty, partial)
        os.link(partial, path)  # fails if another process created the store meanwhile
    except OSError:  # created meanwhile, no hard links or no space here: MLflow creates it
        pass
    finally:
        partial.unlink(missing_ok=True)
