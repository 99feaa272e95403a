"""The lean scoring path, in-process (ASGI calls, no sockets): the same bytes as MLflow's own
scoring server for every payload form, and a 4xx with a JSON message for every malformed
input, never a 5xx."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.data import LABEL, breast_cancer
from pipelines.local import RunResult
from pipelines.loop.traffic import FORMATS, payload
from pipelines.serving.model_server import build_app
from pipelines.serving.scoring import load_scorer


def call(
    app: Any,
    body: bytes,
    content_type: str | None = "application/json",
    *,
    path: str = "/invocations",
    method: str = "POST",
    accept: str | None = None,
) -> tuple[int, bytes, str]:
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-length", str(len(body)).encode())]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode()))
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
    }
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(app(scope, receive, send))
    finally:
        loop.close()
    start = next(m for m in sent if m["type"] == "http.response.start")
    ctype = dict(start["headers"]).get(b"content-type", b"").decode()
    return start["status"], b"".join(m.get("body", b"") for m in sent[1:]), ctype


@pytest.fixture(scope="module")
def model_dir(run: RunResult) -> Path:
    return run.artifact("train", "model")


@pytest.fixture(scope="module")
def kit(model_dir: Path) -> Any:
    return build_app(str(model_dir), version="7")


@pytest.fixture(scope="module")
def mlflow_app(model_dir: Path) -> Any:
    from mlflow.pyfunc import load_model
    from mlflow.pyfunc.scoring_server import init

    return init(load_model(str(model_dir)))


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return breast_cancer().drop(columns=LABEL)


def test_the_example_model_takes_the_fast_path(model_dir: Path) -> None:
    scorer = load_scorer(str(model_dir))
    assert scorer.fast, scorer.why_not_fast
    assert len(scorer.contract.names) == 30


def _forms(features: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    one, hundred = features.head(1), features.iloc[100:200]
    forms = {f"{form} x{len(f)}": payload(f, form) for f in (one, hundred) for form in FORMATS}
    split = {"dataframe_split": hundred.to_dict(orient="split")}  # with the index
    forms["dataframe_split with index"] = (json.dumps(split).encode(), "application/json")
    shuffled = hundred[list(reversed(hundred.columns))]
    forms["columns in another order"] = payload(shuffled, "dataframe_split")
    ints = hundred.round().astype(int)
    forms["integer values"] = payload(ints, "dataframe_records")
    forms["csv, charset"] = (hundred.to_csv(index=False).encode(), "text/csv; charset=utf-8")
    forms["json, charset"] = (payload(one, "instances")[0], "application/json; charset=utf-8")
    return forms


def test_every_payload_form_answers_the_bytes_of_mlflow_models_serve(
    kit: Any, mlflow_app: Any, features: pd.DataFrame
) -> None:
    for name, (body, ctype) in _forms(features).items():
        ours = call(kit, body, ctype)
        theirs = call(mlflow_app, body, ctype)
        assert ours[0] == theirs[0] == 200, (name, ours, theirs)
        assert ours[1] == theirs[1], name
        assert ours[2] == theirs[2], name


def test_forms_the_fast_path_leaves_to_mlflow_still_answer(
    kit: Any, mlflow_app: Any, features: pd.DataFrame
) -> None:
    """Parquet goes to MLflow's own path: same answer."""
    import io

    buffer = io.BytesIO()
    features.head(5).to_parquet(buffer)
    ours = call(kit, buffer.getvalue(), "application/vnd.apache.parquet")
    theirs = call(mlflow_app, buffer.getvalue(), "application/vnd.apache.parquet")
    assert ours == theirs and ours[0] == 200


def test_accept_csv_answers_one_prediction_per_line(kit: Any, features: pd.DataFrame) -> None:
    body, ctype = payload(features.head(4), "dataframe_split")
    status, answer, out_type = call(kit, body, ctype, accept="text/csv")
    as_json = json.loads(call(kit, body, ctype)[1])["predictions"]
    assert (status, out_type) == (200, "text/csv")
    assert answer.decode().splitlines() == [str(p) for p in as_json]
    assert call(kit, body, ctype, accept="application/xml")[0] == 406


def test_v2_infer_per_column_and_as_one_tensor_agree_with_invocations(
    kit: Any, features: pd.DataFrame
) -> None:
    rows = features.iloc[[0, 19, 20, 100]]
    expected = json.loads(call(kit, *payload(rows, "dataframe_split"))[1])["predictions"]
    columns = {
        "inputs": [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
            for c in rows.columns
        ],
        "id": "r1",
    }
    tensor = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.to_numpy().ravel().tolist(),
            }
        ]
    }
    for request in (columns, tensor):
        status, body, _ = call(kit, json.dumps(request).encode(), path="/v2/models/m/infer")
        assert status == 200, body
        answer = json.loads(body)
        assert answer["outputs"][0]["data"] == expected
        assert answer["model_version"] == "7"
    assert json.loads(call(kit, json.dumps(columns).encode(), path="/v2/models/m/infer")[1])[
        "id"
    ] == ("r1")
    status, body, _ = call(kit, b"", path="/v2/models/m", method="GET")
    assert status == 200 and len(json.loads(body)["inputs"]) == 30
    assert call(kit, b"", path="/v2/health/ready", method="GET")[0] == 200


def malformed(features: pd.DataFrame) -> dict[str, tuple[bytes, str | None, int, str]]:
    """name: (body, content type, expected status, path)."""
    cols = list(features.columns)
    rows = features.head(2).to_dict(orient="records")
    split = features.head(2).to_dict(orient="split")
    dump = lambda obj: json.dumps(obj).encode()  # noqa: E731
    j, inv, v2 = "application/json", "/invocations", "/v2/models/m/infer"
    one = [float(x) for x in features.iloc[0]]
    cases: dict[str, tuple[bytes, str | None, int, str]] = {
        "deeply nested (200 KB)": (b"[" * 100_000 + b"]" * 100_000, j, 400, inv),
        "nested 100 levels in a known key": (
            dump({"inputs": json.loads("[" * 100 + "]" * 100)}),
            j,
            400,
            inv,
        ),
        "nested object values": (dump({"params": {"a": {"b": {"c": {}}}}}), j, 400, inv),
        "numeric strings": (
            dump({"dataframe_split": {"columns": cols, "data": [[str(v) for v in one]]}}),
            j,
            400,
            inv,
        ),
        "booleans": (
            dump({"dataframe_records": [{**rows[0], "mean_radius": True}]}),
            j,
            400,
            inv,
        ),
        "extra column": (dump({"dataframe_records": [{**rows[0], "extra": 1.0}]}), j, 400, inv),
        "extra column in split": (
            dump({"dataframe_split": {"columns": [*cols, "x"], "data": [[*one, 1.0]]}}),
            j,
            400,
            inv,
        ),
        "duplicate columns": (
            dump({"dataframe_split": {"columns": [*cols[:-1], cols[0]], "data": [one]}}),
            j,
            400,
            inv,
        ),
        "ragged rows": (
            dump({"dataframe_split": {"columns": cols, "data": [one, one[:3]]}}),
            j,
            400,
            inv,
        ),
        "split without columns": (dump({"dataframe_split": {"data": [one]}}), j, 400, inv),
        "split as a list": (dump({"dataframe_split": [one]}), j, 400, inv),
        "split, unknown key": (dump({"dataframe_split": {**split, "x": 1}}), j, 400, inv),
        "null values": (dump({"instances": [{**rows[0], "mean_area": None}]}), j, 400, inv),
        "inputs columns of unequal length": (
            dump({"inputs": {c: [1.0] * (1 + (i == 0)) for i, c in enumerate(cols)}}),
            j,
            400,
            inv,
        ),
        "instances without names": (dump({"instances": [[1.0, 2.0]]}), j, 400, inv),
        "huge number": (b'{"instances": [' + b"1" * 5000 + b"]}", j, 400, inv),
        "NaN literal": (b'{"instances": [NaN]}', j, 400, inv),
        "not utf-8": (b"\xff\xfe\xfa", j, 400, inv),
        "other charset": (dump({"instances": rows}), "application/json; charset=latin-1", 415, inv),
        "unknown content type parameter": (dump({"instances": rows}), f"{j}; v=2", 415, inv),
        "xml": (b"<a/>", "application/xml", 415, inv),
        "no content type": (b"{}", None, 415, inv),
        "csv of booleans": (
            (",".join(cols) + "\n" + ",".join(["True"] * 30) + "\n").encode(),
            "text/csv",
            400,
            inv,
        ),
        "csv with an empty cell": (
            (",".join(cols) + "\n" + ",".join(["1"] * 29 + [""]) + "\n").encode(),
            "text/csv",
            400,
            inv,
        ),
        "csv extra column": (
            (",".join([*cols, "x"]) + "\n" + ",".join(["1"] * 31) + "\n").encode(),
            "text/csv",
            400,
            inv,
        ),
        "csv header only": ((",".join(cols) + "\n").encode(), "text/csv", 400, inv),
        "csv binary": (b"\x00\x01\x02\xff", "text/csv", 400, inv),
        "csv ragged": (
            (",".join(cols) + "\n1,2\n").encode(),
            "text/csv",
            400,
            inv,
        ),
        "v2 not an object": (b"[1]", j, 400, v2),
        "v2 no datatype": (
            dump({"inputs": [{"name": "a", "shape": [1], "data": [1]}]}),
            j,
            400,
            v2,
        ),
        "v2 bad datatype": (
            dump({"inputs": [{"name": "a", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}),
            j,
            400,
            v2,
        ),
        "v2 shape and data disagree": (
            dump({"inputs": [{"name": "t", "shape": [2, 30], "datatype": "FP64", "data": one}]}),
            j,
            400,
            v2,
        ),
        "v2 wrong column count": (
            dump(
                {"inputs": [{"name": "t", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
            ),
            j,
            400,
            v2,
        ),
        "v2 unknown column names": (
            dump({"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [1.0]}]}),
            j,
            400,
            v2,
        ),
        "v2 strings in data": (
            dump(
                {
                    "inputs": [
                        {"name": "t", "shape": [1, 30], "datatype": "FP64", "data": ["1"] * 30}
                    ]
                }
            ),
            j,
            400,
            v2,
        ),
        "v2 deeply nested": (b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", j, 400, v2),
    }
    return cases


def test_malformed_inputs_get_a_4xx_with_a_json_message_never_a_5xx(
    kit: Any, features: pd.DataFrame
) -> None:
    wrong = {}
    for name, (body, ctype, expected, path) in malformed(features).items():
        status, answer, out_type = call(kit, body, ctype, path=path)
        try:
            message = json.loads(answer)["message"]
        except (ValueError, KeyError):
            message = ""
        if status != expected or out_type != "application/json" or not message:
            wrong[name] = (status, expected, answer[:160])
    assert not wrong, wrong


def test_unknown_routes_and_methods_answer_json(kit: Any) -> None:
    for path, method, expected in (
        ("/nowhere", "GET", 404),
        ("/invocations", "GET", 405),
        ("/v2/models/m/infer", "GET", 405),
        ("/v2/other", "GET", 404),
    ):
        status, body, ctype = call(kit, b"", None, path=path, method=method)
        assert (status, ctype) == (expected, "application/json"), (path, body)
        assert json.loads(body)["message"]
    assert call(kit, b"", None, path="/version", method="GET")[1].decode().count(".") >= 1


def test_a_model_that_fails_on_valid_input_is_a_5xx(
    model_dir: Path, tmp_path: Path, features: pd.DataFrame
) -> None:
    """The fast path validates the input first, so a failure after that is the model's: a 500
    (which the release guard counts), unlike a client's mistake."""
    import cloudpickle

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    with open(broken / "model.pkl", "rb") as fh:
        model = cloudpickle.load(fh)
    model.steps[-1][1].coef_ = np.zeros((1, 3))  # the wrong number of features
    with open(broken / "model.pkl", "wb") as fh:
        cloudpickle.dump(model, fh)
    status, body, _ = call(build_app(str(broken)), *payload(features.head(2), "dataframe_split"))
    assert status == 500 and json.loads(body)["error_code"] == "MODEL_ERROR"


def test_a_flavor_without_a_fast_path_is_served_by_mlflow(
    model_dir: Path, tmp_path: Path, features: pd.DataFrame, mlflow_app: Any
) -> None:
    """No signature: the fast path has no contract to compile, so MLflow's path serves."""
    import yaml

    unsigned = tmp_path / "unsigned"
    shutil.copytree(model_dir, unsigned)
    meta = yaml.safe_load((unsigned / "MLmodel").read_text())
    meta.pop("signature", None)
    (unsigned / "MLmodel").write_text(yaml.safe_dump(meta))
    scorer = load_scorer(str(unsigned))
    assert not scorer.fast and "signature" in scorer.why_not_fast
    body, ctype = payload(features.head(3), "dataframe_split")
    status, answer, _ = call(build_app(str(unsigned)), body, ctype)
    assert status == 200
    assert answer == call(mlflow_app, body, ctype)[1]
    status, answer, _ = call(build_app(str(unsigned)), b"[" * 5000 + b"]" * 5000)
    assert status == 400
