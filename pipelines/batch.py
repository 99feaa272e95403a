"""Local batch scoring: a CSV or Parquet file scored in chunks by the registered champion.

    result = score_file(model, Path("in.csv"), Path("out.csv"), chunk_rows=50_000)

Memory is bounded by construction: `iter_chunks` yields one chunk of at most `chunk_rows`
rows at a time and keeps no reference to it once the next is read, and each chunk is
validated, scored and appended to the output before the next is read. The peak is about one
chunk of input plus its predictions, whatever the size of the file.

Every input row ends in exactly one of two files, never dropped silently:

- the output (`row`, the columns passed through with `keep`, `prediction`, `probability`),
  CSV or Parquet by its suffix;
- the rejects file (`row`, `reason`, `values`): malformed CSV lines (wrong number of fields),
  missing values, values that are not numbers, and values outside the model's data contract,
  each named with its column.

`row` is the 0-based position of the record in the input (CSV: the record after the header,
malformed ones included), so outputs and rejects join back to the input. The run is
deterministic: the same file, model and chunk size give byte-identical outputs. Both files are
written under temporary names and renamed at the end, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.steps._common import StepError, load_contract

SUFFIXES = (".csv", ".parquet")
_BAD_LINE = re.compile(r"Skipping line (\d+): (.*)")


class BatchError(RuntimeError):
    """Batch scoring cannot start or go on; the message says what is wrong and the fix."""


@dataclass(frozen=True)
class FeatureRule:
    """What a feature value must be to be scored: not null, a number, within the contract."""

    name: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass
class ScoringModel:
    """A registered model ready to score: the estimator, its features and their rules."""

    name: str
    version: str
    uri: str
    estimator: Any
    rules: tuple[FeatureRule, ...]

    @property
    def features(self) -> list[str]:
        return [r.name for r in self.rules]


@dataclass
class Chunk:
    """One chunk of input: the parsed rows, their record numbers, and the malformed records."""

    frame: pd.DataFrame
    rows: np.ndarray
    malformed: list[tuple[int, str]]
    done: int
    """Progress so far: bytes read (CSV) or rows read (Parquet)."""


@dataclass
class BatchResult:
    """What a batch run did; rows_in == rows_scored + rows_rejected always."""

    input: str
    output: str
    rejects: str
    model_name: str
    model_version: str
    chunk_rows: int
    chunks: int = 0
    max_chunk_rows: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows_in(self) -> int:
        return self.rows_scored + self.rows_rejected

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "rows_in": self.rows_in}


def _suffix(path: Path, what: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BatchError(
            f"{what} {path} has suffix {suffix or '(none)'!r}, not one of "
            f"{', '.join(SUFFIXES)}; name the file .csv or .parquet"
        )
    return suffix


def input_size(path: Path) -> int:
    """Progress total: bytes of a CSV, rows of a Parquet file."""
    if _suffix(path, "input") == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return path.stat().st_size


def iter_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    """The records of `path` in chunks of at most `chunk_rows`, one held at a time."""
    if chunk_rows < 1:
        raise BatchError(f"chunk_rows={chunk_rows} is not at least 1; set batch.chunkRows")
    path = Path(path)
    if not path.is_file():
        raise BatchError(f"input {path} does not exist; pass --input FILE (.csv or .parquet)")
    if _suffix(path, "input") == ".parquet":
        yield from _parquet_chunks(path, chunk_rows)
    else:
        yield from _csv_chunks(path, chunk_rows)


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    start = 0
    # pre_buffer (the default) caches every column chunk read so far until the reader is
    # closed: memory would grow with the file. Buffered page reads keep it flat.
    parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        frame = batch.to_pandas()
        rows = np.arange(start, start + len(frame), dtype=np.int64)
        start += len(frame)
        yield Chunk(frame, rows, [], start)
        del frame, batch


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    malformed: list[int] = []  # record numbers of malformed lines, sorted
    with open(path, "rb") as fh:
        reader = pd.read_csv(fh, chunksize=chunk_rows, on_bad_lines="warn")
        while True:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    frame = next(reader)
                except StopIteration:
                    frame = None
                except pd.errors.EmptyDataError as exc:
                    raise BatchError(f"input {path} is empty; it needs a header row") from exc
            bad: list[tuple[int, str]] = []
            for warning in caught:
                for line, why in _BAD_LINE.findall(str(warning.message)):
                    record = int(line) - 2  # line 1 is the header
                    bad.append((record, f"malformed CSV line {line}: {why.strip()}"))
                    bisect.insort(malformed, record)
            if frame is None:
                if bad:
                    yield Chunk(pd.DataFrame(), np.empty(0, dtype=np.int64), bad, fh.tell())
                return
            rows = frame.index.to_numpy(dtype=np.int64)  # counts parsed records only
            if malformed:  # shift each parsed row past the malformed records before it
                marks = np.asarray(malformed, dtype=np.int64) - np.arange(len(malformed))
                rows = rows + np.searchsorted(marks, rows, side="right")
            yield Chunk(frame.reset_index(drop=True), rows, bad, fh.tell())
            del frame


def _reasons(frame: pd.DataFrame, rules: tuple[FeatureRule, ...]) -> tuple[pd.Series, Any]:
    """Per row, why it cannot be scored ('' when it can), and the features as float64."""
    notes: list[pd.Series] = []
    values = {}
    for rule in rules:
        raw = frame[rule.name]
        numeric = raw.dtype.kind in "fiub"
        number = (raw if numeric else pd.to_numeric(raw, errors="coerce")).astype("float64")
        missing = raw.isna()
        problems = [(missing, "missing value")]
        if not numeric:
            problems.append((number.isna() & ~missing, "not a number"))
        if rule.minimum is not None:
            problems.append((number < rule.minimum, f"below the contract's min {rule.minimum:g}"))
        if rule.maximum is not None:
            problems.append((number > rule.maximum, f"above the contract's max {rule.maximum:g}"))
        for mask, what in problems:
            if mask.any():
                text = f"column '{rule.name}': {what}"
                if what != "missing value":
                    text = text + " (" + raw[mask].astype(str) + ")"
                notes.append(pd.Series(text, index=frame.index[mask.to_numpy()], dtype=object))
        values[rule.name] = number
    reasons = pd.Series("", index=frame.index, dtype=object)
    if notes:
        joined = pd.concat(notes).groupby(level=0, sort=True).agg("; ".join)
        reasons.loc[joined.index] = joined
    return reasons, pd.DataFrame(values, index=frame.index)


def _score(model: ScoringModel, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    estimator = model.estimator
    predicted = np.asarray(estimator.predict(x))
    if hasattr(estimator, "predict_proba"):
        probability = np.asarray(estimator.predict_proba(x))[:, -1].astype(np.float64)
    else:
        probability = np.full(len(x), np.nan)
    return predicted, probability


class _Writer:
    """Appends frames to a CSV or Parquet file with a fixed schema."""

    def __init__(self, path: Path, columns: list[str]):
        self.path, self.columns = path, columns
        self.parquet = path.suffix.lower() == ".parquet"
        self.handle: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        frame = frame[self.columns]
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.handle is None:
                self.handle = pq.ParquetWriter(self.path, table.schema)
            self.handle.write_table(table.cast(self.handle.schema))
            return
        if self.handle is None:
            self.handle = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
            frame.iloc[:0].to_csv(self.handle, index=False, lineterminator="\n")
        frame.to_csv(self.handle, index=False, header=False, lineterminator="\n")

    def close(self, empty: pd.DataFrame) -> None:
        if self.handle is None:  # nothing written: still leave a file with the header/schema
            self.write(empty)
        self.handle.close()


def _temp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix}")


def default_rejects(output: Path) -> Path:
    """`<output stem>.rejects.csv` beside the output."""
    return output.with_name(output.stem + ".rejects.csv")


def score_file(
    model: ScoringModel,
    input_path: Path,
    output: Path,
    *,
    chunk_rows: int,
    rejects: Path | None = None,
    keep: tuple[str, ...] = (),
    progress: bool = True,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> BatchResult:
    """Score `input_path` into `output` chunk by chunk; bad rows go to `rejects` with reasons."""
    input_path, output = Path(input_path), Path(output)
    _suffix(input_path, "input")
    _suffix(output, "output")
    if not input_path.is_file():
        raise BatchError(f"input {input_path} does not exist; pass --input FILE (.csv/.parquet)")
    rejects = Path(rejects) if rejects else default_rejects(output)
    if output.resolve() in (input_path.resolve(), rejects.resolve()):
        raise BatchError(f"output {output} would overwrite the input or rejects; pick another")
    result = BatchResult(
        str(input_path), str(output), str(rejects), model.name, model.version, chunk_rows
    )
    columns = ["row", *keep, "prediction", "probability"]
    out_tmp, rej_tmp = _temp(output), _temp(rejects)
    output.parent.mkdir(parents=True, exist_ok=True)
    rejects.parent.mkdir(parents=True, exist_ok=True)
    writer, reject_writer = _Writer(out_tmp, columns), _Writer(rej_tmp, ["row", "reason", "values"])
    started = time.perf_counter()
    try:
        with _Progress(progress, input_size(input_path), input_path.name) as bar:
            for chunk in iter_chunks(input_path, chunk_rows):
                if on_chunk is not None:
                    on_chunk(chunk)
                _process(model, chunk, keep, writer, reject_writer, result)
                bar.update(chunk.done, result)
                del chunk
        writer.close(pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in columns}))
        reject_writer.close(
            pd.DataFrame({"row": pd.Series(dtype="int64"), "reason": [], "values": []})
        )
        out_tmp.replace(output)
        rej_tmp.replace(rejects)
    except BaseException:
        for handle in (writer.handle, reject_writer.handle):
            if handle is not None:
                handle.close()
        for tmp in (out_tmp, rej_tmp):
            tmp.unlink(missing_ok=True)
        raise
    result.seconds = time.perf_counter() - started
    return result


def _dtype(column: str) -> str:
    return {"row": "int64", "prediction": "int64", "probability": "float64"}.get(column, "str")


def _process(
    model: ScoringModel,
    chunk: Chunk,
    keep: tuple[str, ...],
    writer: _Writer,
    reject_writer: _Writer,
    result: BatchResult,
) -> None:
    frame = chunk.frame
    result.chunks += 1
    result.max_chunk_rows = max(result.max_chunk_rows, len(frame))
    rejected = [
        pd.DataFrame(
            {
                "row": np.array([r for r, _ in chunk.malformed], dtype=np.int64),
                "reason": [why for _, why in chunk.malformed],
                "values": [""] * len(chunk.malformed),
            }
        )
    ]
    if len(frame):
        missing = [c for c in (*model.features, *keep) if c not in frame.columns]
        if missing:
            raise BatchError(
                f"input {result.input} has no column(s) {', '.join(map(repr, missing))} "
                f"(model {model.name} version {model.version} needs "
                f"{', '.join(model.features)}); fix the file's header"
            )
        reasons, x = _reasons(frame, model.rules)
        bad = (reasons != "").to_numpy()
        if bad.any():
            raw = frame.loc[bad, model.features].astype(object)
            rejected.append(
                pd.DataFrame(
                    {
                        "row": chunk.rows[bad],
                        "reason": reasons[bad].to_numpy(),
                        "values": [
                            json.dumps(
                                {
                                    k: None if pd.isna(v) else str(v)
                                    for k, v in zip(model.features, values, strict=True)
                                }
                            )
                            for values in raw.itertuples(index=False, name=None)
                        ],
                    }
                )
            )
        good = ~bad
        if good.any():
            predicted, probability = _score(model, x.loc[good, model.features])
            out = pd.DataFrame({"row": chunk.rows[good]})
            for column in keep:
                out[column] = frame.loc[good, column].astype(str).to_numpy()
            out["prediction"] = predicted.astype(np.int64)
            out["probability"] = probability
            writer.write(out)
            result.rows_scored += len(out)
    rejects = pd.concat(rejected, ignore_index=True).sort_values("row", kind="stable")
    if len(rejects):
        reject_writer.write(rejects)
        result.rows_rejected += len(rejects)
        for reason in rejects["reason"]:
            for part in reason.split("; "):
                key = re.sub(r" line \d+:.*", " line", part.split(" (", 1)[0])
                result.reasons[key] = result.reasons.get(key, 0) + 1


class _Progress:
    """A rich progress bar over bytes (CSV) or rows (Parquet), or nothing."""

    def __init__(self, enabled: bool, total: int, name: str):
        self.enabled = enabled
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]scoring[/] {task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rows]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.task = self.progress.add_task(name, total=total, rows="")

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, done: int, result: BatchResult) -> None:
        if self.enabled:
            rows = f"{result.rows_scored:,} scored, {result.rows_rejected:,} rejected"
            self.progress.update(self.task, completed=done, rows=rows)


def rules_for(features: list[str], contract: dict[str, Any] | None) -> tuple[FeatureRule, ...]:
    """A rule per feature: the contract's min/max where it names the column."""
    columns = (contract or {}).get("columns", {})
    rules = []
    for name in features:
        spec = columns.get(name) or {}
        rules.append(FeatureRule(name, spec.get("min"), spec.get("max")))
    return tuple(rules)


def load_model(
    tracking_uri: str, model_name: str, version: str | None = None, contract: str = ""
) -> ScoringModel:
    """The champion (or `version`) of `model_name` from the MLflow registry at `tracking_uri`."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from mlflow.models import get_model_info
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        found = (
            client.get_model_version(model_name, str(version))
            if version
            else client.get_model_version_by_alias(model_name, "champion")
        )
    except MlflowException as exc:
        what = f"version {version}" if version else "a champion (approved version)"
        raise BatchError(
            f"{model_name} has no {what} in the registry at {tracking_uri}; run the pipeline "
            "(`mlops pipeline run --stack STACK --target local`) or approve a version"
        ) from exc
    if not version and found.tags.get("approval_status") not in (None, "approved"):
        raise BatchError(
            f"{model_name} champion version {found.version} is "
            f"{found.tags.get('approval_status')!r}, not approved; approve it first"
        )
    uri = f"models:/{model_name}/{found.version}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    try:
        info = get_model_info(uri)
        estimator = mlflow.sklearn.load_model(uri)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    if info.signature is None or info.signature.inputs is None:
        raise BatchError(f"{uri} has no input signature; register it with the pipeline")
    features = list(info.signature.inputs.input_names())
    try:
        rules = rules_for(features, load_contract(contract))
    except StepError as exc:
        raise BatchError(str(exc)) from exc
    return ScoringModel(model_name, str(found.version), uri, estimator, rules)
