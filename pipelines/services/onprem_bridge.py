"""The on-prem release bridge: MLflow registry webhook in, CI release workflow out.

MLflow (3.x registry webhooks) posts `model_version_alias.created` to this service when a
version gets the approval alias (`champion`). The bridge

1. checks the HMAC signature MLflow sends (`X-MLflow-Signature: v1,<base64 HMAC-SHA256 of
   "<delivery id>.<timestamp>.<body>">`), rejects stale timestamps (replay) and repeated
   delivery ids;
2. ignores events for other aliases or other models;
3. starts the CI release workflow: a GitHub `repository_dispatch` or an Azure DevOps
   pipeline run, with the model name, version and alias as the payload. With provider
   `none` it only logs what it would have started.

It runs in the cluster as an ASGI app (Starlette on uvicorn):

    uvicorn pipelines.services.onprem_bridge:app --host 0.0.0.0 --port 8080

configured by environment variables (see `BridgeConfig.from_env`); the two credentials are
read from mounted Secret files named by `MLFLOW_WEBHOOK_SECRET_FILE` and `RELEASE_TOKEN_FILE`
(the plain variables are accepted for local runs). `python -m
pipelines.services.onprem_bridge register ...` creates or updates the MLflow webhook that
points at the bridge (run once per deployment by a Kubernetes Job).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger("mlops.release.bridge")

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
ALIAS_EVENT = "model_version_alias.created"
PROVIDERS = ("none", "github", "azuredevops")
DEFAULT_API = {
    "github": "https://api.github.com",
    "azuredevops": "https://dev.azure.com",
    "none": "",
}
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class BridgeConfig:
    """What the bridge needs; in the cluster it comes from the environment."""

    webhook_secret: str
    """Shared HMAC secret of the MLflow webhook (the file MLFLOW_WEBHOOK_SECRET_FILE names)."""
    provider: str = "none"
    """CI system: none, github or azuredevops (RELEASE_PROVIDER)."""
    repository: str = ""
    """`owner/repo` or `organization/project` (RELEASE_REPOSITORY)."""
    token: str = ""
    """CI token (the file RELEASE_TOKEN_FILE names); never logged."""
    event_type: str = "mlops-release"
    """GitHub repository_dispatch type (RELEASE_EVENT_TYPE)."""
    pipeline_id: str = ""
    """Azure DevOps pipeline id to run (RELEASE_PIPELINE_ID)."""
    alias: str = "champion"
    """Only this alias starts a release (RELEASE_ALIAS)."""
    model_name: str = ""
    """Only this registered model starts a release; empty: any (RELEASE_MODEL_NAME)."""
    stack: str = ""
    """Stack name passed along to the CI workflow (RELEASE_STACK)."""
    api_url: str = ""
    """CI API base URL; empty: the provider's public API (RELEASE_API_URL)."""
    max_skew_seconds: int = 300
    """Oldest accepted webhook timestamp, in seconds (RELEASE_MAX_SKEW_SECONDS)."""
    timeout_seconds: float = 10.0
    """Timeout of the CI call."""

    def __post_init__(self) -> None:
        problems = []
        if not self.webhook_secret:
            problems.append("MLFLOW_WEBHOOK_SECRET is empty; mount it from the webhook Secret")
        if self.provider not in PROVIDERS:
            problems.append(
                f"RELEASE_PROVIDER={self.provider!r} is not one of "
                f"{', '.join(PROVIDERS)}; set release.provider"
            )
        if self.provider != "none":
            if self.repository.count("/") != 1:
                problems.append(
                    f"RELEASE_REPOSITORY={self.repository!r} is not owner/repo; "
                    "set release.repository"
                )
            if not self.token:
                problems.append("RELEASE_TOKEN is empty; set mlops:releaseToken as a secret")
        if self.provider == "azuredevops" and not self.pipeline_id.isdigit():
            problems.append(f"RELEASE_PIPELINE_ID={self.pipeline_id!r} is not a pipeline id")
        if problems:
            raise ValueError("release bridge config: " + "; ".join(problems))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BridgeConfig:
        env = os.environ if env is None else env
        return cls(
            webhook_secret=read_secret(env, "MLFLOW_WEBHOOK_SECRET"),
            provider=env.get("RELEASE_PROVIDER", "none"),
            repository=env.get("RELEASE_REPOSITORY", ""),
            token=read_secret(env, "RELEASE_TOKEN"),
            event_type=env.get("RELEASE_EVENT_TYPE", "mlops-release"),
            pipeline_id=env.get("RELEASE_PIPELINE_ID", ""),
            alias=env.get("RELEASE_ALIAS", "champion"),
            model_name=env.get("RELEASE_MODEL_NAME", ""),
            stack=env.get("RELEASE_STACK", ""),
            api_url=env.get("RELEASE_API_URL", ""),
            max_skew_seconds=int(env.get("RELEASE_MAX_SKEW_SECONDS", "300")),
        )


def read_secret(env: Mapping[str, str], name: str) -> str:
    """A credential from the file `<name>_FILE` names (a mounted Secret), else from `<name>`.

    A `_FILE` that is set but unreadable is an error naming the variable and the path, never a
    silent fallback to an empty credential."""
    path = env.get(f"{name}_FILE", "")
    if not path:
        return env.get(name, "")
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(
            f"{name}_FILE={path!r} cannot be read ({exc.strerror}); mount the Secret holding "
            f"{name} at that path"
        ) from exc


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The signature MLflow sends for this delivery."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_problem(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, max_skew: int
) -> str | None:
    """Why a delivery is not authentic (None when it is)."""
    delivery = headers.get(DELIVERY_HEADER, "")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not (delivery and stamp and given):
        return "missing signature, timestamp or delivery id header"
    if not stamp.isdigit():
        return "timestamp is not a unix time"
    if abs(now - int(stamp)) > max_skew:
        return "timestamp is outside the accepted window (replay?)"
    if not hmac.compare_digest(sign(secret, delivery, stamp, body), given):
        return "signature does not match"
    return None


def release_call(config: BridgeConfig, event: Mapping[str, Any]) -> tuple[str, dict, dict]:
    """URL, headers and JSON body of the CI call that starts the release workflow."""
    data = event.get("data") or {}
    payload = {
        "model_name": data.get("name"),
        "version": str(data.get("version")),
        "alias": data.get("alias"),
        "stack": config.stack,
    }
    base = (config.api_url or DEFAULT_API[config.provider]).rstrip("/")
    if config.provider == "github":
        return (
            f"{base}/repos/{config.repository}/dispatches",
            {
                "Authorization": f"Bearer {config.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
            {"event_type": config.event_type, "client_payload": payload},
        )
    org, project = config.repository.split("/", 1)
    basic = base64.b64encode(f":{config.token}".encode()).decode()
    return (
        f"{base}/{org}/{project}/_apis/pipelines/{config.pipeline_id}/runs?api-version=7.1",
        {"Authorization": f"Basic {basic}", "Content-Type": "application/json"},
        {"templateParameters": payload},
    )


def create_app(
    config: BridgeConfig,
    *,
    clock: Callable[[], float] = time.time,
    session: requests.Session | None = None,
) -> Starlette:
    """The bridge as an ASGI app."""
    http = session or requests.Session()
    seen: OrderedDict[str, None] = OrderedDict()

    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        problem = signature_problem(
            config.webhook_secret,
            request.headers,
            body,
            now=clock(),
            max_skew=config.max_skew_seconds,
        )
        if problem:
            log.warning("rejected webhook delivery: %s", problem)
            return JSONResponse({"error": problem}, status_code=401)
        delivery = request.headers[DELIVERY_HEADER]
        if delivery in seen:
            return JSONResponse({"status": "duplicate", "delivery": delivery})
        seen[delivery] = None
        while len(seen) > 1024:
            seen.popitem(last=False)
        try:
            event = json.loads(body)
        except json.JSONDecodeError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        kind = f"{event.get('entity')}.{event.get('action')}"
        data = event.get("data") or {}
        if kind != ALIAS_EVENT or data.get("alias") != config.alias:
            return JSONResponse({"status": "ignored", "reason": f"{kind} {data.get('alias')}"})
        if config.model_name and data.get("name") != config.model_name:
            return JSONResponse({"status": "ignored", "reason": f"model {data.get('name')}"})
        if config.provider == "none":
            log.info(
                "release of %s v%s not started: release.provider is none",
                data.get("name"),
                data.get("version"),
            )
            return JSONResponse({"status": "not-forwarded", "provider": "none"}, status_code=202)
        url, headers, payload = release_call(config, event)
        try:
            response = await run_in_threadpool(
                http.post, url, json=payload, headers=headers, timeout=config.timeout_seconds
            )
        except requests.RequestException as exc:
            log.error("CI call failed: %s", type(exc).__name__)
            return JSONResponse({"error": "CI unreachable"}, status_code=502)
        if response.status_code >= 300:
            log.error("CI refused the release: HTTP %s", response.status_code)
            return JSONResponse({"error": f"CI answered {response.status_code}"}, status_code=502)
        log.info("started release of %s v%s", data.get("name"), data.get("version"))
        return JSONResponse(
            {
                "status": "forwarded",
                "provider": config.provider,
                "version": str(data.get("version")),
            },
            status_code=202,
        )

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/webhook", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def __getattr__(name: str) -> Any:
    """`app` is built from the environment when uvicorn first asks for it."""
    if name == "app":
        return create_app(BridgeConfig.from_env())
    raise AttributeError(name)


def register_webhook(
    *, name: str, url: str, secret: str, events: list[str], tracking_uri: str | None = None
) -> str:
    """Create the MLflow webhook, or update the one with this name; returns its id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    for hook in client.list_webhooks():
        if hook.name == name:
            client.update_webhook(
                hook.webhook_id, url=url, events=events, secret=secret, status="ACTIVE"
            )
            return hook.webhook_id
    return client.create_webhook(
        name=name,
        url=url,
        events=events,
        secret=secret,
        description="Starts the CI release workflow (on-prem bridge)",
    ).webhook_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.services.onprem_bridge")
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="create or update the MLflow webhook")
    reg.add_argument("--name", required=True)
    reg.add_argument("--url", required=True, help="the bridge's /webhook URL")
    reg.add_argument("--event", action="append", default=None)
    args = parser.parse_args(argv)
    try:
        secret = read_secret(os.environ, "MLFLOW_WEBHOOK_SECRET")
    except ValueError as exc:
        parser.error(str(exc))
    if not secret:
        parser.error("MLFLOW_WEBHOOK_SECRET_FILE (or MLFLOW_WEBHOOK_SECRET) is not set")
    hook_id = register_webhook(
        name=args.name, url=args.url, secret=secret, events=args.event or [ALIAS_EVENT]
    )
    print(f"webhook {args.name} -> {args.url} ({hook_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
