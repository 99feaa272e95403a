"""The endpoint speaks SageMaker's and MLflow's scoring contract, and answers every malformed
payload with a 4xx and a message, never a 5xx, and keeps serving."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlparse

import pandas as pd
import pytest
import requests

from pipelines.loop.traffic import FORMATS, payload
from pipelines.serving.endpoint import Endpoint
from pipelines.serving.server import default_workers


@pytest.mark.parametrize("form", FORMATS)
def test_every_payload_form_gets_the_same_predictions(
    endpoint: Endpoint, features: pd.DataFrame, form: str
) -> None:
    frame = features.iloc[[0, 1, 19, 20, 100]]
    body, ctype = payload(frame, form)
    resp = requests.post(
        f"{endpoint.url}/invocations", data=body, headers={"content-type": ctype}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-model-version"] == "2"
    reference, _ = payload(frame, "dataframe_split")
    expected = requests.post(
        f"{endpoint.url}/invocations",
        data=reference,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert resp.json() == expected.json()
    predictions = resp.json()["predictions"]
    assert len(predictions) == 5 and set(predictions) <= {0, 1}
    assert 0 in predictions and 1 in predictions  # malignant and benign rows in the batch


def test_ping_and_health(endpoint: Endpoint) -> None:
    assert requests.get(f"{endpoint.url}/ping", timeout=5).status_code == 200
    assert requests.get(f"{endpoint.url}/health", timeout=5).status_code == 200


def _records(features: pd.DataFrame) -> list[dict]:
    return features.head(2).to_dict(orient="records")


def malformed(features: pd.DataFrame) -> dict[str, tuple[bytes, dict[str, str], int]]:
    rows = _records(features)
    cols = list(features.columns)
    j = {"content-type": "application/json"}
    dump = lambda obj: json.dumps(obj).encode()  # noqa: E731
    return {
        "bad json": (b'{"dataframe_split": ', j, 400),
        "not utf-8": (b"\xff\xfe\xfa", j, 400),
        "empty body": (b"", j, 400),
        "whitespace body": (b"   \n", j, 400),
        "json list": (b"[1, 2, 3]", j, 400),
        "json string": (b'"hello"', j, 400),
        "no known key": (dump({"data": rows}), j, 400),
        "two keys": (dump({"instances": rows, "inputs": rows}), j, 400),
        "wrong column names": (dump({"dataframe_records": [{"a": 1.0, "b": 2.0}]}), j, 400),
        "one column missing": (
            dump(
                {
                    "dataframe_records": [
                        {k: v for k, v in r.items() if k != "mean_radius"} for r in rows
                    ]
                }
            ),
            j,
            400,
        ),
        "wrong column count": (
            dump({"dataframe_split": {"columns": cols, "data": [[1.0, 2.0]]}}),
            j,
            400,
        ),
        "instances without names": (dump({"instances": [[1.0, 2.0, 3.0]]}), j, 400),
        "string values": (
            dump({"dataframe_records": [{**r, "mean_radius": "big"} for r in rows]}),
            j,
            400,
        ),
        "nested values": (
            dump({"dataframe_records": [{**r, "mean_area": [1, 2]} for r in rows]}),
            j,
            400,
        ),
        "null values": (
            dump({"dataframe_records": [{**r, "mean_area": None} for r in rows]}),
            j,
            400,
        ),
        "empty records": (dump({"dataframe_records": []}), j, 400),
        "csv wrong header": (b"a,b\n1,2\n", {"content-type": "text/csv"}, 400),
        "csv garbage": (b"\x00\x01\x02", {"content-type": "text/csv"}, 400),
        "csv empty": (b"", {"content-type": "text/csv"}, 400),
        "unsupported type": (b"<a/>", {"content-type": "application/xml"}, 415),
        "no content type": (b"{}", {}, 415),
        "other charset": (b"{}", {"content-type": "application/json; charset=latin-1"}, 415),
        "deeply nested (200 KB)": (b"[" * 100_000 + b"]" * 100_000, j, 400),
        "numeric strings": (
            dump({"dataframe_records": [{k: str(v) for k, v in r.items()} for r in rows]}),
            j,
            400,
        ),
        "booleans": (dump({"dataframe_records": [{**r, "mean_area": True} for r in rows]}), j, 400),
        "extra column": (dump({"dataframe_records": [{**r, "extra": 1.0} for r in rows]}), j, 400),
        "v2 garbage": (b'{"inputs": 5}', j, 400),
    }


def test_malformed_payloads_get_4xx_with_a_message_and_the_server_keeps_serving(
    endpoint: Endpoint, features: pd.DataFrame
) -> None:
    answers = {}
    for name, (body, headers, expected) in malformed(features).items():
        path = "/v2/models/m/infer" if name.startswith("v2") else "/invocations"
        resp = requests.post(f"{endpoint.url}{path}", data=body, headers=headers, timeout=30)
        answers[name] = (resp.status_code, expected, resp.text[:120])
        assert resp.headers["content-type"] == "application/json", name
        assert resp.json()["message"], f"{name}: no message"
    wrong = {n: a for n, a in answers.items() if a[0] != a[1]}
    assert not wrong, wrong
    assert requests.get(f"{endpoint.url}/ping", timeout=5).status_code == 200
    good, ctype = payload(features.head(3), "dataframe_split")
    resp = requests.post(
        f"{endpoint.url}/invocations", data=good, headers={"content-type": ctype}, timeout=30
    )
    assert resp.status_code == 200 and len(resp.json()["predictions"]) == 3
    state = endpoint.state()["versions"]["2"]
    assert state["errors_5xx"] == 0 and state["alive"]


def test_admin_routes_need_the_token(endpoint: Endpoint) -> None:
    resp = requests.put(f"{endpoint.url}/-/traffic", json={"weights": {"2": 100}}, timeout=5)
    assert resp.status_code == 403
    resp = requests.put(
        f"{endpoint.url}/-/traffic",
        json={"weights": {"2": 100}},
        timeout=5,
        headers={"x-admin-token": "wrong"},
    )
    assert resp.status_code == 403
    assert endpoint.url.startswith("http://127.0.0.1:")


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(endpoint: Endpoint) -> None:
    url = urlparse(endpoint.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
        raw.sendall(
            b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 200000000\r\n\r\n"
        )
        answer = raw.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"REQUEST_TOO_LARGE"' in answer


def test_unknown_routes_and_methods_answer_json(endpoint: Endpoint) -> None:
    for method, path, expected in (
        ("GET", "/nowhere", 404),
        ("GET", "/invocations", 405),
        ("DELETE", "/ping", 405),
    ):
        resp = requests.request(method, endpoint.url + path, timeout=10)
        assert resp.status_code == expected, (method, path, resp.text)
        assert resp.json()["error_code"] and resp.json()["message"]


def test_mlflow_client_version_v2_and_csv_answers(
    endpoint: Endpoint, features: pd.DataFrame
) -> None:
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    host, port = urlparse(endpoint.url).hostname, urlparse(endpoint.url).port
    assert ScoringServerClient(host, port).get_version()
    rows = features.iloc[[0, 19, 20]]
    body, ctype = payload(rows, "dataframe_split")
    expected = requests.post(
        f"{endpoint.url}/invocations", data=body, headers={"content-type": ctype}, timeout=30
    ).json()["predictions"]
    as_csv = requests.post(
        f"{endpoint.url}/invocations",
        data=body,
        headers={"content-type": ctype, "accept": "text/csv"},
        timeout=30,
    )
    assert as_csv.headers["content-type"] == "text/csv"
    assert as_csv.text.split() == [str(p) for p in expected]
    v2 = {
        "inputs": [
            {"name": c, "shape": [3], "datatype": "FP64", "data": rows[c].tolist()}
            for c in rows.columns
        ]
    }
    resp = requests.post(f"{endpoint.url}/v2/models/local-classifier/infer", json=v2, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["outputs"][0]["data"] == expected
    assert resp.headers["x-model-version"] == "2"


def test_every_worker_of_a_version_takes_connections_with_tcp_nodelay(
    endpoint: Endpoint,
) -> None:
    port = endpoint.state()["versions"]["2"]["port"]
    workers, nodelay = set(), set()
    for _ in range(60):  # a new connection each time: the kernel spreads them (SO_REUSEPORT)
        resp = requests.get(f"http://127.0.0.1:{port}/ping", timeout=5)
        workers.add(resp.headers["x-worker"])
        nodelay.add(resp.headers["x-tcp-nodelay"])
    assert len(workers) == default_workers()
    assert nodelay == {"1"}
