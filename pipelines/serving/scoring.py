"""The lean scoring path: a model's input contract compiled once, requests parsed straight into
arrays and handed to the estimator, answers byte-identical to `mlflow models serve`.

    scorer = load_scorer("/path/to/mlflow/model")
    status, body, content_type = scorer.invocations(body, "application/json", accept="*/*")
    status, body, content_type = scorer.infer_v2(body)          # Open Inference Protocol

What is covered without importing MLflow: the `sklearn` flavor (pickle or cloudpickle) with a
column signature of numeric columns, fed `dataframe_split`, `dataframe_records`, `instances` or
`inputs` (records or columns) JSON, CSV with a header row, or v2 tensors (one per column, or
one [rows, columns] tensor). Everything else (other flavors, `params`, Parquet, tensor
signatures) goes to MLflow's own scoring app, loaded in the background once the fast path
serves: `Scorer.fallback`.

The contract is stricter than MLflow's (which casts what it can): a column value is a JSON
number (not a string, boolean or null), the columns are exactly the signature's (a missing or
an extra column is a 400), and JSON nested deeper than `MAX_JSON_DEPTH` is a 400. Every input
a client can get wrong is a 4xx with `{"error_code", "message"}`; a 5xx means the model failed.
"""

from __future__ import annotations

import io
import json
import operator
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
JSON_FORMS = ("dataframe_split", "dataframe_records", "instances", "inputs")
NUMERIC_TYPES = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32}
V2_DATATYPES = {
    "FP64": np.float64,
    "FP32": np.float32,
    "INT64": np.int64,
    "INT32": np.int32,
    "INT16": np.int16,
    "INT8": np.int8,
}
NUMBERS = frozenset((int, float))
MAX_JSON_DEPTH = 32


class BadRequest(Exception):
    """A client error: status, MLflow-style error code and a message that says what to send."""

    def __init__(self, message: str, status: int = 400, code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_body(status: int, code: str, message: str) -> tuple[int, bytes, str]:
    return status, orjson.dumps({"error_code": code, "message": message}), JSON


class Fallback:
    """MLflow's own scoring path for what the fast path does not cover (imported lazily)."""

    def __init__(self, model_uri: str):
        self.model_uri = model_uri
        self._model: Any = None
        self._schema: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                from mlflow.pyfunc import load_model

                model = load_model(self.model_uri)
                self._schema = model.metadata.get_input_schema()
                self._model = model

    def invocations(self, body: bytes, content_type: str) -> tuple[int, bytes, str]:
        from mlflow.exceptions import MlflowException
        from mlflow.pyfunc.scoring_server import invocations

        self.load()
        try:
            result = invocations(body, content_type, self._model, self._schema)
        except MlflowException as exc:
            status = exc.get_http_status_code()
            return error_body(status, str(exc.error_code), exc.message)
        except RecursionError:
            return error_body(400, "BAD_REQUEST", "the input is nested too deeply")
        payload = result.response
        payload = payload.encode() if isinstance(payload, str) else payload
        if result.status >= 400 and result.mimetype != JSON:
            code = "UNSUPPORTED_MEDIA_TYPE" if result.status == 415 else "BAD_REQUEST"
            return error_body(result.status, code, payload.decode(errors="replace"))
        return result.status, payload, result.mimetype


@dataclass
class Contract:
    """The signature's columns, compiled: names, dtype and a getter of a record's values."""

    names: list[str]
    dtype: Any
    index: dict[str, int] = field(init=False)
    getter: Callable[[dict[str, Any]], Any] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {n: i for i, n in enumerate(self.names)}
        self.getter = operator.itemgetter(*self.names)

    def order(self, columns: Any) -> list[int] | None:
        """The position of each signature column in `columns` (None when already in order)."""
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise BadRequest("`columns` must be a list of column names")
        if columns == self.names:
            return None
        self.check_names(columns)
        return [columns.index(n) for n in self.names]

    def check_names(self, columns: Any) -> None:
        given = set(columns)
        missing = [n for n in self.names if n not in given]
        extra = [c for c in columns if c not in self.index]
        if missing or extra or len(given) != len(self.names):
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(missing[:5])}")
            if extra:
                parts.append(f"unknown column(s) {', '.join(map(str, extra[:5]))}")
            if not parts:
                parts.append("duplicate column names")
            raise BadRequest(
                f"{'; '.join(parts)}; the model takes exactly these {len(self.names)} "
                f"columns: {', '.join(self.names)}"
            )


def _numbers(rows: Any, width: int) -> None:
    """Every row is a list of `width` JSON numbers (booleans, strings and nulls refused)."""
    if not isinstance(rows, list) or not rows:
        raise BadRequest("the input has no rows; send at least one")
    for i, row in enumerate(rows):
        if type(row) is not list or len(row) != width:
            raise BadRequest(f"row {i} is not a list of {width} values")
        if not NUMBERS.issuperset(map(type, row)):
            bad = next(v for v in row if type(v) not in NUMBERS)
            raise BadRequest(
                f"row {i} holds {json.dumps(bad)[:40]}; every column value must be a number"
            )


def _depth_at_most(obj: Any, limit: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


class Scorer:
    """One model's scoring: the fast path where it applies, MLflow's otherwise."""

    def __init__(
        self,
        model_uri: str,
        *,
        predict: Callable[[np.ndarray], Any] | None,
        contract: Contract | None,
        name: str = "model",
        version: str = "",
        why_not_fast: str = "",
    ):
        self.model_uri, self.name, self.version = model_uri, name, version
        self.predict, self.contract, self.why_not_fast = predict, contract, why_not_fast
        self.fallback = Fallback(model_uri)

    @property
    def fast(self) -> bool:
        return self.predict is not None and self.contract is not None

    # MLflow's /invocations ---------------------------------------------------------------
    def invocations(
        self, body: bytes, content_type: str, accept: str = ""
    ) -> tuple[int, bytes, str] | None:
        """The answer, or None when the request is MLflow's path's (`slow_invocations`)."""
        mime, _, params = content_type.partition(";")
        mime = mime.strip().lower()
        if params.strip():
            key, _, value = params.strip().partition("=")
            if key.strip().lower() != "charset" or value.strip().strip('"').lower() != "utf-8":
                return error_body(
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    f"content type {content_type!r} is not supported; send UTF-8 "
                    "(application/json or text/csv, optionally with charset=utf-8)",
                )
        as_csv = _wants_csv(accept)
        if as_csv is None:
            return error_body(
                406,
                "NOT_ACCEPTABLE",
                f"cannot answer in {accept!r}; accept application/json or text/csv",
            )
        try:
            if mime == JSON:
                parsed = _parse_json(body)
                if self.fast and isinstance(parsed, dict) and len(parsed) == 1:
                    rows = self._from_json(parsed)
                    if rows is not None:
                        return self._answer(rows, as_csv)
                if not _depth_at_most(parsed, MAX_JSON_DEPTH):
                    raise BadRequest(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
            elif mime == CSV:
                if self.fast:
                    return self._answer(self._from_csv(body), as_csv)
            elif mime != PARQUET:
                return error_body(
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    f"content type {mime!r} is not supported; send application/json "
                    "(dataframe_split, dataframe_records, instances or inputs) or text/csv",
                )
        except BadRequest as exc:
            return error_body(exc.status, exc.code, exc.message)
        return None

    def slow_invocations(
        self, body: bytes, content_type: str, accept: str = ""
    ) -> tuple[int, bytes, str]:
        """MLflow's scoring path (loaded on first use), for what the fast path leaves."""
        as_csv = _wants_csv(accept)
        status, payload, ctype = self.fallback.invocations(body, content_type)
        if status == 200 and as_csv:
            predictions = orjson.loads(payload).get("predictions")
            if isinstance(predictions, list):
                return 200, _csv_lines(predictions), CSV
        return status, payload, ctype

    def _from_json(self, parsed: dict[str, Any]) -> np.ndarray | None:
        """Rows in signature order, or None for a shape the fast path leaves to MLflow."""
        contract = self.contract
        assert contract is not None
        ((form, value),) = parsed.items()
        if form == "dataframe_split":
            if not isinstance(value, dict) or not set(value) <= {"columns", "data", "index"}:
                raise BadRequest(
                    "dataframe_split must be an object with `columns` and `data` (and `index`)"
                )
            if "columns" not in value:
                raise BadRequest("dataframe_split has no `columns`; name the columns")
            order = contract.order(value["columns"])
            rows = value.get("data")
            _numbers(rows, len(value["columns"]))
            array = np.array(rows, dtype=contract.dtype)
            return array if order is None else array[:, order]
        if form in ("dataframe_records", "instances", "inputs"):
            if isinstance(value, list) and value and all(type(r) is dict for r in value):
                return self._records(value)
            if form == "inputs" and isinstance(value, dict) and value:
                return self._columns(value)
            if form == "dataframe_records" or (isinstance(value, list) and not value):
                raise BadRequest(f"{form} must be a non-empty list of records (objects)")
            return None
        return None

    def _records(self, records: list[dict[str, Any]]) -> np.ndarray:
        contract = self.contract
        assert contract is not None
        width = len(contract.names)
        try:
            rows = [list(contract.getter(r)) for r in records]
        except KeyError:
            bad = next(r for r in records if not set(contract.names) <= set(r))
            contract.check_names(list(bad))
            raise
        for record in records:
            if len(record) != width:
                contract.check_names(list(record))
        _numbers(rows, width)
        return np.array(rows, dtype=contract.dtype)

    def _columns(self, columns: dict[str, Any]) -> np.ndarray:
        contract = self.contract
        assert contract is not None
        contract.check_names(list(columns))
        values = [columns[n] for n in contract.names]
        lengths = {len(v) if isinstance(v, list) else -1 for v in values}
        if len(lengths) != 1 or -1 in lengths:
            raise BadRequest("every column in `inputs` must be a list of the same length")
        _numbers(values, lengths.pop())
        return np.array(values, dtype=contract.dtype).T

    def _from_csv(self, body: bytes) -> np.ndarray:
        import pyarrow as pa
        from pyarrow import csv

        contract = self.contract
        assert contract is not None
        try:
            table = csv.read_csv(
                io.BytesIO(body),
                read_options=csv.ReadOptions(use_threads=False),
                convert_options=csv.ConvertOptions(
                    column_types={n: pa.float64() for n in contract.names},
                    strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise BadRequest(
                f"cannot read the CSV ({str(exc).splitlines()[0][:200]}); send a header row "
                "of column names and one row of numbers per line"
            ) from exc
        contract.check_names(table.column_names)
        if table.num_rows == 0:
            raise BadRequest("the CSV has no rows; send at least one below the header")
        nulls = [n for n in contract.names if table.column(n).null_count]
        if nulls:
            raise BadRequest(f"empty value(s) in column(s) {', '.join(nulls[:5])}")
        return np.column_stack(
            [table.column(n).to_numpy().astype(contract.dtype, copy=False) for n in contract.names]
        )

    def _answer(self, rows: np.ndarray, as_csv: bool) -> tuple[int, bytes, str]:
        predictions = self._predict(rows)
        if as_csv:
            return 200, _csv_lines(predictions.tolist()), CSV
        # json.dumps, as MLflow does: the bytes are those of `mlflow models serve`
        return 200, json.dumps({"predictions": predictions.tolist()}).encode(), JSON

    def _predict(self, rows: np.ndarray) -> np.ndarray:
        assert self.predict is not None
        try:
            predictions = self.predict(rows)
        except Exception as exc:  # noqa: BLE001 - validated input: a failure is the model's
            raise ModelFailed(f"the model failed on valid input: {exc!r}"[:500]) from exc
        if not isinstance(predictions, np.ndarray):
            raise ModelFailed(f"the model returned {type(predictions).__name__}, not an array")
        return predictions

    # Open Inference Protocol (v2) --------------------------------------------------------
    def metadata_v2(self) -> bytes:
        inputs = (
            [{"name": n, "datatype": "FP64", "shape": [-1]} for n in self.contract.names]
            if self.contract
            else []
        )
        return orjson.dumps(
            {
                "name": self.name,
                "versions": [self.version] if self.version else [],
                "platform": "mlflow-sklearn" if self.fast else "mlflow-pyfunc",
                "inputs": inputs,
                "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
            }
        )

    def infer_v2(self, body: bytes) -> tuple[int, bytes, str]:
        try:
            request = _parse_json(body)
            if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
                raise BadRequest('send {"inputs": [{"name", "shape", "datatype", "data"}, ...]}')
            rows = self._from_v2(request["inputs"])
        except BadRequest as exc:
            return error_body(exc.status, exc.code, exc.message)
        predictions = self._predict(rows)
        answer: dict[str, Any] = {
            "model_name": self.name,
            "model_version": self.version,
            "outputs": [
                {
                    "name": "predict",
                    "shape": list(predictions.shape),
                    "datatype": _v2_datatype(predictions.dtype),
                    "data": predictions.ravel().tolist(),
                }
            ],
        }
        if isinstance(request.get("id"), str):
            answer["id"] = request["id"]
        return 200, orjson.dumps(answer), JSON

    def _from_v2(self, inputs: list[Any]) -> np.ndarray:
        if not self.fast:
            raise BadRequest(
                "this model's flavor is served on /invocations only; v2 needs the sklearn "
                "flavor with a column signature",
                status=404,
                code="NOT_FOUND",
            )
        contract = self.contract
        assert contract is not None
        tensors = []
        for i, spec in enumerate(inputs):
            if not isinstance(spec, dict) or not {"name", "shape", "datatype", "data"} <= set(spec):
                raise BadRequest(f"inputs[{i}] needs name, shape, datatype and data")
            if spec["datatype"] not in V2_DATATYPES:
                raise BadRequest(
                    f"inputs[{i}].datatype {str(spec['datatype'])[:20]!r} is not one of "
                    f"{', '.join(V2_DATATYPES)}"
                )
            shape, data = spec["shape"], spec["data"]
            if (
                not isinstance(shape, list)
                or not all(type(d) is int and d > 0 for d in shape)
                or not 1 <= len(shape) <= 2
            ):
                raise BadRequest(f"inputs[{i}].shape must be [rows] or [rows, columns]")
            if type(data) is not list or (data and type(data[0]) is list):
                data = data if type(data) is list else []
                flat = [v for row in data for v in (row if type(row) is list else [row])]
            else:
                flat = data
            _numbers([flat], int(np.prod(shape)))
            tensors.append((spec["name"], shape, flat))
        if len(tensors) == 1 and len(tensors[0][1]) == 2:
            _, (rows, cols), flat = tensors[0]
            if cols != len(contract.names):
                raise BadRequest(
                    f"a [rows, columns] tensor needs {len(contract.names)} columns "
                    f"({', '.join(contract.names)}), got {cols}"
                )
            return np.array(flat, dtype=contract.dtype).reshape(rows, cols)
        contract.check_names([t[0] for t in tensors])
        lengths = {t[1][0] for t in tensors}
        if len(lengths) != 1 or any(len(t[1]) != 1 for t in tensors):
            raise BadRequest("every per-column tensor must have shape [rows], the same rows")
        by_name = {t[0]: t[2] for t in tensors}
        return np.array([by_name[n] for n in contract.names], dtype=contract.dtype).T


class ModelFailed(Exception):
    """The model raised (or answered nonsense) on input that met its contract: a 500."""


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid UTF-8 JSON ({str(exc)[:160]}); send one JSON object "
            "with one of dataframe_split, dataframe_records, instances or inputs"
        ) from exc


def _wants_csv(accept: str) -> bool | None:
    """False for JSON (the default), True for CSV, None when neither is acceptable."""
    if not accept:
        return False
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for kind in types:
        if kind in (JSON, "*/*", "application/*"):
            return False
        if kind in (CSV, "text/*"):
            return True
    return None


def _csv_lines(predictions: list[Any]) -> bytes:
    out = io.StringIO()
    for value in predictions:
        out.write(",".join(map(str, value)) if isinstance(value, list) else str(value))
        out.write("\n")
    return out.getvalue().encode()


def _v2_datatype(dtype: np.dtype) -> str:
    for name, kind in V2_DATATYPES.items():
        if dtype == kind:
            return name
    return "BOOL" if dtype == np.bool_ else "BYTES"


def _local_path(model_uri: str) -> Path | None:
    if model_uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(model_uri).path))
    if "://" in model_uri or model_uri.startswith(("models:", "runs:")):
        return None
    return Path(model_uri)


def load_scorer(model_uri: str, *, name: str = "model", version: str = "") -> Scorer:
    """Compile the model's contract and load its estimator without MLflow when the flavor is
    covered; otherwise a Scorer that sends every request to MLflow's path (loaded now)."""
    why = _fast_path(model_uri)
    if isinstance(why, str):
        scorer = Scorer(
            model_uri, predict=None, contract=None, name=name, version=version, why_not_fast=why
        )
        scorer.fallback.load()
        return scorer
    predict, contract = why
    return Scorer(model_uri, predict=predict, contract=contract, name=name, version=version)


def _fast_path(model_uri: str) -> tuple[Callable[[np.ndarray], Any], Contract] | str:
    """(predict, contract) for a covered model; else why it is not covered."""
    folder = _local_path(model_uri)
    if folder is None or not (folder / "MLmodel").is_file():
        return f"{model_uri} is not a local MLflow model folder"
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    flavors = meta.get("flavors", {})
    sk = flavors.get("sklearn")
    pyfunc = flavors.get("python_function", {})
    if not sk or pyfunc.get("loader_module") != "mlflow.sklearn":
        return f"flavors {', '.join(flavors)}: not the sklearn flavor"
    if sk.get("serialization_format") not in ("cloudpickle", "pickle") or sk.get("code"):
        return f"sklearn serialization {sk.get('serialization_format')!r} with code"
    signature = meta.get("signature") or {}
    inputs = json.loads(signature.get("inputs") or "null")
    if (
        not isinstance(inputs, list)
        or not inputs
        or signature.get("params")
        or not all(isinstance(c, dict) and c.get("name") for c in inputs)
        or not all(c.get("required", True) for c in inputs)
    ):
        return "no signature of required named columns"
    types = {c.get("type") for c in inputs}
    if len(types) != 1 or next(iter(types)) not in NUMERIC_TYPES:
        return f"column types {sorted(map(str, types))}: not one numeric type"
    contract = Contract([c["name"] for c in inputs], NUMERIC_TYPES[types.pop()])
    import cloudpickle

    with open(folder / sk.get("pickled_model", "model.pkl"), "rb") as handle:
        model = cloudpickle.load(handle)
    fn = pyfunc.get("predict_fn", "predict")
    predict = getattr(model, fn, None)
    if predict is None:
        return f"the estimator has no {fn}"
    seen = getattr(model, "feature_names_in_", None)
    if seen is not None and list(seen) != contract.names:
        return "the estimator's feature names differ from the signature"
    # fitted on a DataFrame, the estimator warns on arrays: the names were checked above
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    return predict, contract
