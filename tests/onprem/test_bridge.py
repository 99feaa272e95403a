"""The release bridge over real HTTP on loopback: MLflow's own signer on one side, a
recording CI API server on the other, the bridge (uvicorn) in between."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests
import uvicorn
from mlflow.webhooks.delivery import _generate_hmac_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.services.onprem_bridge import BridgeConfig, create_app

SECRET = "s3cr3t-hmac-key"
TOKEN = "ghp_test_token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, app: Any):
        self.port = _free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def ci() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A fake CI API that records what it receives."""
    received: list[dict[str, Any]] = []

    async def record(request: Request) -> JSONResponse:
        received.append(
            {
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "json": await request.json(),
            }
        )
        return JSONResponse({}, status_code=204 if "dispatches" in request.url.path else 200)

    app = Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])
    with _Server(app) as url:
        yield url, received


def _config(ci_url: str, **changes: Any) -> BridgeConfig:
    base = BridgeConfig(
        webhook_secret=SECRET,
        provider="github",
        repository="globex/ml-platform",
        token=TOKEN,
        model_name="globex-classifier",
        stack="globex-prod",
        api_url=ci_url,
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def bridge(ci: tuple[str, list]) -> Iterator[str]:
    with _Server(create_app(_config(ci[0]))) as url:
        yield url


def _event(alias: str = "champion", name: str = "globex-classifier", version: str = "4") -> str:
    return json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "2025-01-01T00:00:00Z",
            "data": {"name": name, "alias": alias, "version": version},
        }
    )


def _post(
    url: str,
    body: str,
    *,
    secret: str = SECRET,
    stamp: int | None = None,
    delivery: str | None = None,
    signature: str | None = None,
) -> requests.Response:
    delivery = delivery or str(uuid.uuid4())
    ts = str(int(time.time()) if stamp is None else stamp)
    sig = signature or _generate_hmac_signature(secret, delivery, ts, body)
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": sig,
    }
    return requests.post(f"{url}/webhook", data=body.encode(), headers=headers, timeout=10)


def test_signed_approval_starts_the_github_release(bridge: str, ci: tuple[str, list]) -> None:
    received = ci[1]
    before = len(received)
    response = _post(bridge, _event(version="4"))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "forwarded"
    assert len(received) == before + 1, "the bridge did not call the CI API"
    call = received[-1]
    assert call["path"] == "/repos/globex/ml-platform/dispatches"
    assert call["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert call["json"] == {
        "event_type": "mlops-release",
        "client_payload": {
            "model_name": "globex-classifier",
            "version": "4",
            "alias": "champion",
            "stack": "globex-prod",
        },
    }


@pytest.mark.parametrize(
    ("case", "kwargs", "reason"),
    [
        ("wrong secret", {"secret": "not-the-secret"}, "signature does not match"),
        ("stale timestamp", {"stamp": int(time.time()) - 3600}, "outside the accepted window"),
        ("garbled signature", {"signature": "v1,AAAA"}, "signature does not match"),
    ],
)
def test_bad_signatures_are_rejected_and_not_forwarded(
    bridge: str, ci: tuple[str, list], case: str, kwargs: dict, reason: str
) -> None:
    before = len(ci[1])
    response = _post(bridge, _event(), **kwargs)
    assert response.status_code == 401, f"{case}: {response.text}"
    assert reason in response.json()["error"], case
    assert len(ci[1]) == before, f"{case}: a rejected delivery reached the CI API"


def test_missing_headers_are_rejected(bridge: str, ci: tuple[str, list]) -> None:
    before = len(ci[1])
    response = requests.post(f"{bridge}/webhook", data=_event(), timeout=10)
    assert response.status_code == 401
    assert len(ci[1]) == before


def test_a_tampered_body_is_rejected(bridge: str, ci: tuple[str, list]) -> None:
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    signature = _generate_hmac_signature(SECRET, delivery, stamp, _event(version="4"))
    before = len(ci[1])
    response = _post(
        bridge, _event(version="5"), delivery=delivery, stamp=int(stamp), signature=signature
    )
    assert response.status_code == 401
    assert len(ci[1]) == before


def test_a_replayed_delivery_is_not_forwarded_twice(bridge: str, ci: tuple[str, list]) -> None:
    delivery = str(uuid.uuid4())
    before = len(ci[1])
    first = _post(bridge, _event(), delivery=delivery)
    second = _post(bridge, _event(), delivery=delivery)
    assert first.json()["status"] == "forwarded"
    assert second.json()["status"] == "duplicate"
    assert len(ci[1]) == before + 1


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (_event(alias="challenger"), "another alias"),
        (_event(name="someone-else"), "another model"),
        (json.dumps({"entity": "model_version", "action": "created", "data": {}}), "other event"),
    ],
)
def test_other_events_are_ignored(bridge: str, ci: tuple[str, list], event: str, why: str) -> None:
    before = len(ci[1])
    response = _post(bridge, event)
    assert response.status_code == 200, why
    assert response.json()["status"] == "ignored", why
    assert len(ci[1]) == before, f"{why} was forwarded"


def test_ci_failure_is_reported_as_bad_gateway(ci: tuple[str, list]) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    with _Server(create_app(_config(dead))) as url:
        response = _post(url, _event())
    assert response.status_code == 502


def test_azure_devops_runs_the_pipeline(ci: tuple[str, list]) -> None:
    config = _config(ci[0], provider="azuredevops", repository="globex/ml", pipeline_id="12")
    before = len(ci[1])
    with _Server(create_app(config)) as url:
        response = _post(url, _event(version="7"))
    assert response.status_code == 202, response.text
    call = ci[1][before]
    assert call["path"] == "/globex/ml/_apis/pipelines/12/runs"
    assert call["query"] == "api-version=7.1"
    assert call["headers"]["authorization"].startswith("Basic ")
    assert call["json"]["templateParameters"]["version"] == "7"


def test_provider_none_accepts_but_does_not_forward(ci: tuple[str, list]) -> None:
    config = BridgeConfig(webhook_secret=SECRET, api_url=ci[0])
    before = len(ci[1])
    with _Server(create_app(config)) as url:
        response = _post(url, _event())
    assert response.status_code == 202
    assert response.json()["status"] == "not-forwarded"
    assert len(ci[1]) == before


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "MLFLOW_WEBHOOK_SECRET is empty"),
        ({"MLFLOW_WEBHOOK_SECRET": "x", "RELEASE_PROVIDER": "jenkins"}, "is not one of"),
        (
            {
                "MLFLOW_WEBHOOK_SECRET": "x",
                "RELEASE_PROVIDER": "github",
                "RELEASE_REPOSITORY": "globex/ml",
            },
            "RELEASE_TOKEN is empty",
        ),
        (
            {
                "MLFLOW_WEBHOOK_SECRET": "x",
                "RELEASE_PROVIDER": "github",
                "RELEASE_TOKEN": "t",
                "RELEASE_REPOSITORY": "no-slash",
            },
            "is not owner/repo",
        ),
        (
            {
                "MLFLOW_WEBHOOK_SECRET": "x",
                "RELEASE_PROVIDER": "azuredevops",
                "RELEASE_TOKEN": "t",
                "RELEASE_REPOSITORY": "o/p",
            },
            "is not a pipeline id",
        ),
    ],
)
def test_bridge_config_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BridgeConfig.from_env(env)
