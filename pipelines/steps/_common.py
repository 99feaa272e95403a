"""Helpers shared by the step entry points: files, hashes, contract loading, lineage facts."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".parquet")
FINGERPRINT_PACKAGES = ("numpy", "pandas", "scikit-learn", "scipy", "pandera", "mlflow")


class StepError(RuntimeError):
    """A step cannot go on; the message names what is wrong and how to fix it."""


def table_files(path: Path) -> list[Path]:
    """The data files at `path`: the file itself, or every CSV/Parquet file below a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in TABLE_SUFFIXES and p.is_file())
        if files:
            return files
        raise StepError(f"no .csv or .parquet file under {path}; point --data at the batch")
    raise StepError(f"data path {path} does not exist; point --data at a file or folder")


def _identity(file: Path) -> tuple[int, int, int, int]:
    """What tells one version of a file from another without reading it: device, inode, size
    and modification time (not the path: the runner renames a finished step's folder)."""
    stat = Path(file).stat()
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class RunMemo:
    """Tables and file digests shared by the steps of one local run, by file identity.

    The local runner runs every step in one process, so the batch validate-data read is the
    one prepare splits, and the splits prepare wrote are the ones train, evaluate and register
    read; the files the runner hashes for cache keys are the ones the steps hash for lineage.
    Inside `run_memo()` each is read, written or hashed once and handed on. Frames are shared,
    never copied: pandas' copy-on-write keeps one reader's changes from reaching the next.
    At most `size` tables are kept (the batch, then the train and test splits).

    Outside a run (a step run on its own, on SageMaker or Azure ML) nothing is remembered:
    a file's identity cannot tell two writes within one clock tick apart, and a run is the
    span over which its inputs do not change.
    """

    def __init__(self, size: int = 3):
        self.size = size
        self.frames: dict[tuple, pd.DataFrame] = {}
        self.digests: dict[tuple[int, int, int, int], bytes] = {}

    def get(self, key: tuple) -> pd.DataFrame | None:
        frame = self.frames.pop(key, None)
        if frame is not None:
            self.frames[key] = frame  # most recently used last
        return frame

    def put(self, key: tuple, frame: pd.DataFrame) -> None:
        self.frames.pop(key, None)
        self.frames[key] = frame
        while len(self.frames) > self.size:
            self.frames.pop(next(iter(self.frames)))

    def forget(self, files: Iterable[Path]) -> None:
        """Drop the tables read from `files` (a step that has consumed them frees the memory)."""
        gone = {_identity(f) for f in files if Path(f).is_file()}
        for key in [k for k in self.frames if gone & set(k)]:
            del self.frames[key]


_MEMO: RunMemo | None = None


@contextlib.contextmanager
def run_memo() -> Iterator[RunMemo]:
    """Share tables and digests between the steps run inside this block (see `RunMemo`)."""
    global _MEMO
    outer, _MEMO = _MEMO, _MEMO or RunMemo()
    try:
        yield _MEMO
    finally:
        _MEMO = outer


def forget_tables(files: Iterable[Path]) -> None:
    if _MEMO is not None:
        _MEMO.forget(files)


def _read_file(file: Path, columns: list[str] | None) -> pd.DataFrame:
    import pandas as pd

    if file.suffix == ".parquet":
        return pd.read_parquet(file, columns=columns)
    return pd.read_csv(file, usecols=columns)


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The table at `path` (a CSV/Parquet file or a folder of them), `columns` only if given.

    Inside a run (`run_memo`) a file is read once; a later read of the same file, of all or
    some of its columns, takes the frame already in memory.
    """
    import pandas as pd

    files = table_files(path)
    key = tuple(_identity(f) for f in files)
    frame = _MEMO.get(key) if _MEMO is not None else None
    if frame is None:
        frames = [_read_file(file, None) for file in files]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        if _MEMO is not None:
            _MEMO.put(key, frame)
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise StepError(f"{path} lacks the column(s) {', '.join(missing)}")
        frame = frame[columns]
    return frame


def write_table(frame: pd.DataFrame, file: Path) -> Path:
    """Write `frame` as Parquet (no index); inside a run, remember it so the next step's read
    of `file` is free."""
    file.parent.mkdir(parents=True, exist_ok=True)
    frame = frame.reset_index(drop=True)
    frame.to_parquet(file, index=False)
    if _MEMO is not None:
        _MEMO.put((_identity(file),), frame)
    return file


SPLIT_FILES = ("data.parquet", "data.csv")
"""A split folder's data file: Parquet as prepare writes it; CSV as older runs (and hand-made
SageMaker channels) have it."""


def split_file(folder: Path) -> Path | None:
    """The data file of a split folder written by prepare, or None when there is none."""
    for name in SPLIT_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def read_split(folder: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The split in `folder` (data.parquet, or data.csv), `columns` only if given."""
    file = split_file(folder)
    if file is None:
        raise StepError(
            f"no data.parquet or data.csv in {folder}; pass prepare's train/test folder"
        )
    return read_table(file, columns)


def file_digest(file: Path) -> bytes:
    """sha256 of the file's content; inside a run, each file is hashed once (the runner's
    cache keys and the steps' lineage hash the same files)."""
    key = _identity(file) if _MEMO is not None else None
    digest = _MEMO.digests.get(key) if _MEMO is not None else None
    if digest is None:
        with open(file, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").digest()
        if _MEMO is not None:
            _MEMO.digests[key] = digest
    return digest


def hash_files(files: Iterable[Path], root: Path | None = None) -> str:
    """sha256 over each file's name (relative to `root`) and the sha256 of its content."""
    digest = hashlib.sha256()
    for file in files:
        name = str(file.relative_to(root)) if root else file.name
        digest.update(name.encode())
        digest.update(file_digest(file))
    return digest.hexdigest()


def hash_path(path: Path) -> str:
    """sha256 over a file or a folder's files (names and contents), stable across machines."""
    path = Path(path)
    if path.is_file():
        return hash_files([path])
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return hash_files(files, root=path)


def data_hash(path: Path) -> str:
    return hash_files(table_files(path))


def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise StepError(f"{path} is missing; run the step that writes it first") from exc


def load_contract(ref: str | Path | None) -> dict[str, Any]:
    """The data contract at `ref`, or the packaged breast-cancer contract when empty."""
    if not ref:
        text = resources.files("pipelines.contracts").joinpath("breast_cancer.yaml").read_text()
        source = "packaged breast_cancer.yaml"
    else:
        path = Path(ref)
        if not path.is_file():
            raise StepError(
                f"data contract {path} not found; pass --contract FILE or leave it "
                "empty for the packaged breast-cancer contract"
            )
        text, source = path.read_text(), str(path)
    contract = yaml.safe_load(text)
    if not isinstance(contract, dict) or "columns" not in contract or "label" not in contract:
        raise StepError(f"data contract {source} needs 'columns' and 'label' keys")
    return contract


def feature_columns(contract: dict[str, Any]) -> list[str]:
    label = contract["label"]["column"]
    return [name for name in contract["columns"] if name != label]


def code_version() -> str:
    """Git sha of the code: $MLOPS_CODE_VERSION (baked into images), else git, else 'unknown'."""
    env = os.environ.get("MLOPS_CODE_VERSION") or os.environ.get("GIT_COMMIT")
    if env:
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else "unknown"


def environment_fingerprint() -> dict[str, str]:
    """Python, platform and key package versions, plus a short hash over all of them."""
    facts = {"python": platform.python_version(), "platform": sys.platform}
    for name in FINGERPRINT_PACKAGES:
        try:
            facts[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            facts[name] = "absent"
    facts["hash"] = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return facts


def parse_scalar(value: Any) -> Any:
    """'1.0' -> 1.0, 'true' -> True, '3' -> 3; other strings stay strings (SageMaker hands
    hyperparameters over as strings)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
