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
DEFAULT_CHUNK_ROWS = 1_000_000
"""Rows a data step holds at once (validate-data, prepare, evaluate); the pipeline setting
`chunk_rows` (training.chunkRows) overrides it."""
READ_BUFFER = 1 << 20
"""Parquet read buffer; with `pre_buffer=False` pyarrow then keeps no column chunk it has
decoded (with it on, it keeps every one until the file is closed)."""
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


def table_rows(path: Path) -> int | None:
    """Rows of the table at `path` from the Parquet footers (nothing else is read); None when
    a file is CSV (its rows are known only by reading it)."""
    import pyarrow.parquet as pq

    rows = 0
    for file in table_files(path):
        if file.suffix != ".parquet":
            return None
        rows += pq.ParquetFile(file).metadata.num_rows
    return rows


def _missing(path: Path, columns: list[str] | None, present: Iterable[str]) -> None:
    missing = [c for c in columns or () if c not in set(present)]
    if missing:
        raise StepError(f"{path} lacks the column(s) {', '.join(missing)}")


PIECE_ROWS = 65_536
"""Rows pyarrow decodes at a time while a chunk is gathered (it keeps about a piece, not a
chunk, of decoding buffers)."""


def _file_pieces(file: Path, columns: list[str] | None, rows: int) -> Iterator[Any]:
    """A file's rows in pieces of at most `rows` rows, in order: pyarrow record batches for
    Parquet, pandas frames for CSV."""
    import pandas as pd
    import pyarrow.parquet as pq

    if file.suffix == ".parquet":
        parquet = pq.ParquetFile(file, pre_buffer=False, buffer_size=READ_BUFFER)
        _missing(file, columns, parquet.schema_arrow.names)
        yield from parquet.iter_batches(batch_size=rows, columns=columns)
        return
    header = pd.read_csv(file, nrows=0).columns
    _missing(file, columns, header)
    yield from pd.read_csv(file, usecols=columns, chunksize=rows)


def _frame(pieces: list[Any], start: int) -> pd.DataFrame:
    """One pandas frame of `pieces` (record batches and/or frames), indexed from `start`."""
    import pandas as pd
    import pyarrow as pa

    frame = None
    if all(isinstance(p, pa.RecordBatch) for p in pieces):
        with contextlib.suppress(pa.ArrowInvalid):  # files of one folder with other types
            frame = pa.Table.from_batches(pieces).to_pandas()
    if frame is None:
        parts = [p.to_pandas() if isinstance(p, pa.RecordBatch) else p for p in pieces]
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


def one_chunk(path: Path, chunk_rows: int) -> bool:
    """Whether the table at `path` is read as one chunk of `chunk_rows` rows: it is in memory
    in this run, or its Parquet footers say it has at most that many rows."""
    files = table_files(path)
    frame = _MEMO.get(tuple(_identity(f) for f in files)) if _MEMO is not None else None
    if frame is not None:
        return len(frame) <= chunk_rows
    rows = table_rows(path)
    return rows is not None and rows <= chunk_rows


def iter_chunks(
    path: Path, columns: list[str] | None = None, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The table at `path` in consecutive chunks of exactly `chunk_rows` rows (the last one
    shorter), indexed by row number in the whole table (0-based, across a folder's files).

    One chunk is gathered at a time from pieces of `PIECE_ROWS` rows and handed on; this
    generator keeps no reference to it afterwards, so a step that keeps only per-chunk results
    (and drops each chunk before asking for the next) is bounded by `chunk_rows`, not by the
    table. A table of at most `chunk_rows` rows, or one already in memory inside a run, comes
    as `read_table` gives it (read once, shared with the next step). An empty table yields one
    empty chunk, so its columns can still be checked.
    """
    if chunk_rows < 1:
        raise StepError(f"chunk_rows={chunk_rows} is not at least 1; pass --chunk-rows N")
    files = table_files(path)
    key = tuple(_identity(f) for f in files)
    frame = _MEMO.get(key) if _MEMO is not None else None
    if frame is None:
        rows = table_rows(path)
        if rows is not None and rows <= chunk_rows:
            frame = read_table(path)
    if frame is not None:
        if columns is not None:
            _missing(path, columns, frame.columns)
            frame = frame[columns]
        if len(frame) <= chunk_rows:
            yield frame  # the table itself, as a one-piece read gives it
            return
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start : start + chunk_rows]
        return
    import pyarrow as pa

    pool = pa.default_memory_pool()
    pieces: list[Any] = []
    held = start = 0
    for file in files:
        for piece in _file_pieces(file, columns, min(chunk_rows, PIECE_ROWS)):
            while len(piece):
                take = min(len(piece), chunk_rows - held)
                if take == len(piece):
                    pieces.append(piece)
                    piece = piece[:0]
                else:
                    pieces.append(piece[:take])
                    piece = piece[take:]
                held += take
                if held == chunk_rows:
                    chunk = _frame(pieces, start)
                    pieces, held, start = [], 0, start + chunk_rows
                    pool.release_unused()  # the pieces' pages go back to the system
                    yield chunk
                    del chunk
                    pool.release_unused()  # and the chunk's, once the step is done with it
    if held:
        chunk = _frame(pieces, start)
        if start == 0 and columns is None and _MEMO is not None:
            _MEMO.put(key, chunk)  # a CSV batch of one chunk is read once in a run, too
        yield chunk
    elif start == 0:
        yield read_table(path, columns)  # no rows at all


class SplitWriter:
    """Writes a split's data.parquet chunk by chunk (pyarrow `ParquetWriter`) to a hidden
    partial file that becomes data.parquet only in `close()`: a step that stops half way
    leaves no data.parquet that looks complete (`discard()` removes the partial file).

    With `remember` (the split comes from a batch of one chunk), the split is remembered inside
    a run, as `write_table` does; without it nothing is held between chunks."""

    def __init__(self, folder: Path, *, remember: bool = False):
        self.file = Path(folder) / SPLIT_FILES[0]
        self.partial = self.file.with_name(f".{self.file.name}.partial")
        self.writer: Any = None
        self.rows = 0
        self.remember = remember
        self.only: pd.DataFrame | None = None
        self.chunks = 0

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = frame.reset_index(drop=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self.file.unlink(missing_ok=True)
            self.writer = pq.ParquetWriter(self.partial, table.schema)
        elif not table.schema.equals(self.writer.schema, check_metadata=False):
            try:
                table = table.cast(self.writer.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise StepError(
                    f"rows {self.rows}-{self.rows + len(frame) - 1} of the split do not have "
                    f"the column types of the rows before them ({exc}); give every file of "
                    "the batch the same column types"
                ) from exc
        self.writer.write_table(table)
        self.only = frame if self.remember and self.chunks == 0 else None
        self.chunks += 1
        self.rows += len(frame)

    def close(self) -> Path:
        """Finish the file and give it its final name; an empty split is written too."""
        if self.writer is None:
            raise StepError(f"nothing was written to {self.file}")
        self.writer.close()
        os.replace(self.partial, self.file)
        if _MEMO is not None and self.only is not None:
            _MEMO.put((_identity(self.file),), self.only)
        self.only = None
        return self.file

    def discard(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        self.partial.unlink(missing_ok=True)
        self.only = None


SPLIT_FILES = ("data.parquet", "data.csv")
"""A split folder's data file: Parquet as prepare writes it; CSV as older runs (and hand-made
SageMaker channels) have it."""


def split_file(folder: Path) -> Path | None:
    """The data file of a split folder written by prepare, or None when there is none."""
    for name in SPLIT_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def split_rows(folder: Path) -> int | None:
    """Rows of the split in `folder` from its Parquet footer; None for a CSV split."""
    file = split_file(folder)
    if file is None:
        raise StepError(
            f"no data.parquet or data.csv in {folder}; pass prepare's train/test folder"
        )
    return table_rows(file)


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
