"""The local endpoint: a router in front of one model server per version (Starlette on uvicorn,
keep-alive HTTP to the model servers).

    python -m pipelines.serving.router --state-file FILE --capture-dir DIR [--port 8080]

Public routes (the SageMaker / MLflow scoring contract, the Open Inference Protocol v2 of
KServe and MLServer, plus metrics):

    GET  /ping, /health     200 when a version takes traffic and its process is up, else 503
    GET  /version           the MLflow version of the scoring contract (MLflow's client asks)
    POST /invocations       forwarded to a version picked by the traffic weights
    GET, POST /v2/...       forwarded the same way (`/v2/models/{name}/infer`, metadata, health)
    GET  /metrics           Prometheus text: requests, errors, latency per version

Admin routes, for the release (loopback only, and the `X-Admin-Token` from the state file):

    GET    /-/state                          versions, weights, in-flight counts, summaries
    POST   /-/backends {version, model_uri}  start a model server for a version
    PUT    /-/traffic {weights: {v: pct}}    move traffic (atomically)
    DELETE /-/backends/{v}?drain_seconds=N   drain (wait for in-flight requests) and stop
    GET    /-/backends/{v}/ping, POST /-/backends/{v}/invocations   reach one version directly

Each version runs `workers` model server processes on one port (`model_server --workers`).
Successful invocations are captured (a `capture_percent` share) as JSON lines: the raw
request and response, the version, the latency; a file is rotated every hour or at
`capture_file_bytes`, and the oldest files are deleted past `capture_max_bytes`. A request
whose pooled connection the model server closed is retried once; only a retry that fails too
counts as an upstream error (the release guard's signal, with 5xx and latency of answered
requests). The router stops every model server it started when it stops, and each model
server stops when the router dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pipelines.serving.metrics import Metrics
from pipelines.serving.server import (
    DEFAULT_MAX_BODY_BYTES,
    LOOPBACK,
    Hardening,
    bind,
    default_workers,
    exit_with_parent,
    send_error,
    send_json,
    serve,
)
from pipelines.serving.spare import Spare, terminate
from pipelines.serving.upstream import Upstream, UpstreamError

START_TIMEOUT_SECONDS = 120.0
MAX_CAPTURED_BODY = 256 * 1024
CAPTURE_FILE_BYTES = 64 * 1024 * 1024
CAPTURE_MAX_BYTES = 1024 * 1024 * 1024
FORWARDED_HEADERS = (b"content-type", b"accept")


@dataclass
class Backend:
    """One model version's server process."""

    version: str
    model_uri: str
    process: Any
    """An asyncio subprocess, or a `ForkedProcess` of the spare (same interface)."""
    port: int
    log: Path
    session: Any = None
    """This version's own connection pool, closed before its process is stopped (so the
    server's graceful shutdown does not wait on idle keep-alive connections)."""
    inflight: int = 0
    started: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


class RouterError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Router:
    """Versions, weights, forwarding, capture and metrics; all state lives on one event loop."""

    def __init__(
        self,
        *,
        run_dir: Path,
        capture_dir: Path,
        capture_percent: int,
        max_body_bytes: int,
        workers: int = 1,
        capture_file_bytes: int = CAPTURE_FILE_BYTES,
        capture_max_bytes: int = CAPTURE_MAX_BYTES,
        use_spare: bool = True,
    ):
        self.run_dir, self.capture_dir = run_dir, capture_dir
        self.capture_percent, self.max_body_bytes = capture_percent, max_body_bytes
        self.workers = workers
        self.capture_file_bytes, self.capture_max_bytes = capture_file_bytes, capture_max_bytes
        self.backends: dict[str, Backend] = {}
        self.weights: dict[str, float] = {}
        self.metrics = Metrics()
        self._capture: TextIO | None = None
        self._capture_key = ""
        self._capture_size = 0
        self._flusher: asyncio.Task[None] | None = None
        self.use_spare = use_spare
        self.spare: Spare | None = None

    # lifecycle -------------------------------------------------------------------------
    async def startup(self) -> None:
        self.capture_dir.mkdir(parents=True, exist_ok=True)
        self._flusher = asyncio.create_task(self._flush_every(0.5))
        if self.use_spare:
            self.spare = Spare()
            await self.spare.start()

    async def shutdown(self) -> None:
        for version in list(self.backends):
            self.weights[version] = 0.0
            result = await self.stop_backend(version, drain_seconds=0.0)
            print(f"router: stopped version {version} (exit {result['exit_code']})", flush=True)
        if self._flusher:
            self._flusher.cancel()
        if self.spare:
            await self.spare.stop()
        if self._capture:
            self._capture.close()

    async def _flush_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            if self._capture:
                self._capture.flush()

    # versions --------------------------------------------------------------------------
    async def start_backend(
        self, version: str, model_uri: str, timeout: float = START_TIMEOUT_SECONDS
    ) -> Backend:
        if version in self.backends and self.backends[version].alive:
            raise RouterError(409, f"version {version} is already running; stop it first")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ready = self.run_dir / f"model-{version}.ready.json"
        log = self.run_dir / f"model-{version}.log"
        ready.unlink(missing_ok=True)
        server_args = [
            "--model-uri",
            model_uri,
            "--version",
            version,
            "--ready-file",
            str(ready),
            "--max-body-bytes",
            str(self.max_body_bytes),
            "--workers",
            str(self.workers),
        ]
        log.write_bytes(b"")
        process: Any = None
        if self.spare is not None:
            process = await self.spare.fork(log, server_args)
        if process is None:
            with open(log, "wb") as out:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "pipelines.serving.model_server",
                    *server_args,
                    "--exit-with-parent",
                    str(os.getpid()),
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL,
                )
        deadline = time.monotonic() + timeout
        while not ready.is_file():
            if process.returncode is not None or time.monotonic() > deadline:
                why = f"exited with code {process.returncode}"
                if process.returncode is None:
                    await terminate(process)
                    why = f"did not start within {timeout:.0f}s"
                tail = " ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                raise RouterError(
                    502,
                    f"model server for version {version} {why}: {tail or 'no output'} (log: {log})",
                )
            await asyncio.sleep(0.1)
        port = int(json.loads(ready.read_text())["port"])
        session = Upstream(LOOPBACK, port)  # idle connections go before the server's 5 s
        backend = Backend(
            version, model_uri, process, port, log, session=session, started=time.time()
        )
        self.backends[version] = backend
        self.weights.setdefault(version, 0.0)
        return backend

    async def stop_backend(self, version: str, drain_seconds: float) -> dict[str, Any]:
        backend = self._backend(version)
        if self.weights.get(version, 0.0) > 0 and any(
            w > 0 for v, w in self.weights.items() if v != version
        ):
            raise RouterError(
                409,
                f"version {version} still takes traffic; move its weight "
                "to 0 first (PUT /-/traffic)",
            )
        self.weights.pop(version, None)
        deadline = time.monotonic() + drain_seconds
        while backend.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        left = backend.inflight
        await backend.session.close()
        await terminate(backend.process)
        self.backends.pop(version, None)
        return {
            "version": version,
            "drained": left == 0,
            "inflight_at_stop": left,
            "exit_code": backend.process.returncode,
        }

    def set_weights(self, weights: dict[str, float]) -> None:
        unknown = [v for v in weights if v not in self.backends]
        if unknown:
            raise RouterError(
                404,
                f"no running version {', '.join(unknown)}; start it with POST /-/backends first",
            )
        dead = [v for v, w in weights.items() if w > 0 and not self.backends[v].alive]
        if dead:
            raise RouterError(
                409, f"version {', '.join(dead)} is not running; cannot send traffic to it"
            )
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise RouterError(400, f"weights {weights} must be >= 0 with a positive sum")
        self.weights = {v: float(weights.get(v, 0.0)) for v in self.backends}

    def _backend(self, version: str) -> Backend:
        if version not in self.backends:
            raise RouterError(
                404, f"no running version {version}; running: {', '.join(self.backends) or 'none'}"
            )
        return self.backends[version]

    def pick(self, exclude: frozenset[str] = frozenset()) -> Backend | None:
        live = [
            (v, w)
            for v, w in self.weights.items()
            if w > 0 and v not in exclude and self.backends[v].alive
        ]
        if not live:
            return None
        versions, weights = zip(*live, strict=True)
        return self.backends[random.choices(versions, weights)[0]]

    # forwarding ------------------------------------------------------------------------
    async def forward(
        self, backend: Backend, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        backend.inflight += 1
        try:
            return await backend.session.request(
                "GET" if body is None else "POST", path, body, headers
            )
        finally:
            backend.inflight -= 1

    async def invoke(
        self,
        body: bytes | None,
        headers: dict[str, str],
        path: str = "/invocations",
    ) -> tuple[int, bytes, str, str]:
        """Forward to a version picked by weight; one retry (on another version when there is
        one) when the connection fails. Only a failed retry counts as an upstream error."""
        tried: list[str] = []
        for _ in range(2):
            backend = self.pick(frozenset(tried)) or self.pick()
            if backend is None:
                raise RouterError(
                    503, "no model version is serving; release one with `mlops release local`"
                )
            started = time.perf_counter()
            try:
                status, payload, ctype = await self.forward(backend, path, body, headers)
            except UpstreamError:
                tried.append(backend.version)
                self.metrics.retried(backend.version)
                continue
            seconds = time.perf_counter() - started
            self.metrics.observe(backend.version, status, seconds)
            if status == 200 and body is not None:
                self._record(
                    backend.version, body, headers.get("content-type", ""), payload, seconds
                )
            return status, payload, ctype, backend.version
        for version in set(tried):
            self.metrics.upstream_error(version)
        raise RouterError(502, "the model server did not answer; see /-/state and its log")

    def _capture_file(self, now: datetime, size: int) -> TextIO:
        """The open capture file: a new one every hour or past `capture_file_bytes`; the
        oldest files go once all of them hold more than `capture_max_bytes`."""
        hour = f"{now:%Y%m%dT%H}"
        if (
            self._capture is None
            or not self._capture_key.startswith(hour)
            or self._capture_size + size > self.capture_file_bytes
        ):
            if self._capture:
                self._capture.close()
            part = 0
            while True:
                key = hour if part == 0 else f"{hour}-{part}"
                path = self.capture_dir / f"capture-{key}.jsonl"
                if not path.exists() or path.stat().st_size + size <= self.capture_file_bytes:
                    break
                part += 1
            self._capture = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            self._capture_key = key
            self._capture_size = path.stat().st_size
            self._prune(keep=path)
        return self._capture

    def _prune(self, keep: Path) -> None:
        files = sorted(self.capture_dir.glob("capture-*.jsonl"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for path in files:
            if total <= self.capture_max_bytes or path == keep:
                break
            total -= path.stat().st_size
            path.unlink(missing_ok=True)
            self.metrics.capture_pruned += 1

    def _record(
        self, version: str, body: bytes, content_type: str, payload: bytes, seconds: float
    ) -> None:
        if len(body) > MAX_CAPTURED_BODY or random.random() * 100 >= self.capture_percent:
            return
        now = datetime.now(UTC)
        record = {
            "time": now.isoformat(),
            "version": version,
            "content_type": content_type,
            "request": body.decode("utf-8", "replace"),
            "response": payload.decode("utf-8", "replace"),
            "latency_ms": round(seconds * 1000, 3),
        }
        line = json.dumps(record) + "\n"
        self._capture_file(now, len(line)).write(line)
        self._capture_size += len(line)
        if self._capture_size > self.capture_file_bytes:
            self._capture_file(now, 0)
        self.metrics.captured += 1

    def state(self) -> dict[str, Any]:
        return {
            "versions": {
                v: {
                    "model_uri": b.model_uri,
                    "port": b.port,
                    "pid": b.process.pid,
                    "alive": b.alive,
                    "weight": self.weights.get(v, 0.0),
                    "inflight": b.inflight,
                    "log": str(b.log),
                    **self.metrics.summary(v),
                }
                for v, b in self.backends.items()
            },
            "serving": [v for v, w in self.weights.items() if w > 0],
            "captured": self.metrics.captured,
        }


def build_app(router: Router, token: str) -> Any:
    """The Starlette app of `router`, wrapped in the same body limits as a model server."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    def error(status: int, message: str) -> JSONResponse:
        code = {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT", 403: "FORBIDDEN"}.get(
            status, "ENDPOINT_ERROR"
        )
        return JSONResponse({"error_code": code, "message": message}, status_code=status)

    def admin(handler: Any) -> Any:
        async def guarded(request: Request) -> Response:
            client = request.client.host if request.client else ""
            if client not in (LOOPBACK, "::1") or not secrets.compare_digest(
                request.headers.get("x-admin-token", ""), token
            ):
                return error(
                    403,
                    "admin routes need the X-Admin-Token from the endpoint's "
                    "state file, from loopback",
                )
            try:
                return await handler(request)
            except RouterError as exc:
                return error(exc.status, exc.message)
            except (ValueError, KeyError, TypeError) as exc:
                return error(400, f"bad admin request: {exc}")

        return guarded

    async def ping(request: Request) -> Response:
        ok = router.pick() is not None
        return Response(
            "\n" if ok else "no model version is serving\n",
            status_code=200 if ok else 503,
            media_type="application/json",
        )

    async def version(request: Request) -> Response:
        return Response(_mlflow_version(), media_type="application/json")

    async def metrics(request: Request) -> Response:
        text = router.metrics.exposition(
            router.weights, {v: b.inflight for v, b in router.backends.items()}
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def state(request: Request) -> Response:
        return JSONResponse(router.state())

    async def add_backend(request: Request) -> Response:
        spec = await request.json()
        backend = await router.start_backend(
            str(spec["version"]),
            str(spec["model_uri"]),
            float(spec.get("timeout", START_TIMEOUT_SECONDS)),
        )
        return JSONResponse(
            {"version": backend.version, "port": backend.port, "pid": backend.process.pid},
            status_code=201,
        )

    async def remove_backend(request: Request) -> Response:
        drain = float(request.query_params.get("drain_seconds", "30"))
        return JSONResponse(await router.stop_backend(request.path_params["version"], drain))

    async def traffic(request: Request) -> Response:
        spec = await request.json()
        router.set_weights({str(k): float(v) for k, v in spec["weights"].items()})
        return JSONResponse({"weights": router.weights})

    async def backend_ping(request: Request) -> Response:
        backend = router._backend(request.path_params["version"])
        status, payload, _ = await backend.session.request("GET", "/ping", None, {})
        return Response(payload, status_code=status)

    async def backend_invoke(request: Request) -> Response:
        backend = router._backend(request.path_params["version"])
        status, payload, ctype = await router.forward(
            backend,
            "/invocations",
            await request.body(),
            {k: v for k, v in request.headers.items() if k.encode() in FORWARDED_HEADERS},
        )
        return Response(
            payload,
            status_code=status,
            media_type=ctype,
            headers={"x-model-version": backend.version},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await router.startup()
        try:
            yield
        finally:
            await router.shutdown()

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "") or "error"
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "ENDPOINT_ERROR")
        return JSONResponse(
            {"error_code": code, "message": f"{detail}: {request.method} {request.url.path}"},
            status_code=status,
            headers=getattr(exc, "headers", None),
        )

    inner = Starlette(
        routes=[
            Route("/ping", ping),
            Route("/health", ping),
            Route("/version", version),
            Route("/metrics", metrics),
            Route("/-/state", admin(state)),
            Route("/-/backends", admin(add_backend), methods=["POST"]),
            Route("/-/backends/{version}", admin(remove_backend), methods=["DELETE"]),
            Route("/-/backends/{version}/ping", admin(backend_ping)),
            Route("/-/backends/{version}/invocations", admin(backend_invoke), methods=["POST"]),
            Route("/-/traffic", admin(traffic), methods=["PUT"]),
        ],
        exception_handlers={404: http_error, 405: http_error},
        lifespan=lifespan,
    )

    async def scoring(scope: Any, send: Any) -> None:
        """The public scoring routes, forwarded without a framework in the way."""
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "POST") or (path == "/invocations" and method != "POST"):
            await send_error(send, 405, f"{method} is not allowed on {path}", "METHOD_NOT_ALLOWED")
            return
        headers = {
            k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in FORWARDED_HEADERS
        }
        if scope.get("query_string"):
            path = f"{path}?{scope['query_string'].decode('latin-1')}"
        try:
            status, payload, ctype, version = await router.invoke(
                scope.get("body") if method == "POST" else None, headers, path
            )
        except RouterError as exc:
            code = {502: "BAD_GATEWAY", 503: "UNAVAILABLE"}.get(exc.status, "ENDPOINT_ERROR")
            await send_error(send, exc.status, exc.message, code)
            return
        await send_json(
            send, status, payload, [(b"x-model-version", version.encode())], ctype.encode()
        )

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (
            scope["path"] == "/invocations" or scope["path"].startswith("/v2")
        ):
            await scoring(scope, send)
            return
        await inner(scope, receive, send)

    return Hardening(app, version=None, max_body_bytes=router.max_body_bytes)


def _mlflow_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("mlflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.serving.router",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument("--capture-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--capture-percent", type=int, default=100)
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help=f"model server processes per version (0 = one per core: {default_workers()})",
    )
    parser.add_argument("--capture-file-bytes", type=int, default=CAPTURE_FILE_BYTES)
    parser.add_argument("--capture-max-bytes", type=int, default=CAPTURE_MAX_BYTES)
    parser.add_argument(
        "--exit-with-parent",
        type=int,
        default=0,
        metavar="PID",
        help="stop when process PID (the starter) is gone",
    )
    args = parser.parse_args(argv)
    if args.exit_with_parent:
        exit_with_parent(args.exit_with_parent)
    try:
        sock = bind(args.port)
    except OSError as exc:
        print(
            f"router: cannot listen on {LOOPBACK}:{args.port} ({exc.strerror}); pass another "
            "--port, or stop what uses it (`mlops serve stop`)",
            file=sys.stderr,
        )
        return 3
    token = secrets.token_urlsafe(24)
    router = Router(
        run_dir=args.state_file.parent / "processes",
        capture_dir=args.capture_dir,
        capture_percent=args.capture_percent,
        max_body_bytes=args.max_body_bytes,
        workers=args.workers or default_workers(),
        capture_file_bytes=args.capture_file_bytes,
        capture_max_bytes=args.capture_max_bytes,
    )
    port = sock.getsockname()[1]
    args.state_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(args.state_file.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(
            {
                "url": f"http://{LOOPBACK}:{port}",
                "port": port,
                "pid": os.getpid(),
                "token": token,
                "capture_dir": str(args.capture_dir),
                "started": datetime.now(UTC).isoformat(),
            },
            out,
        )
    args.state_file.with_suffix(".tmp").replace(args.state_file)
    try:
        serve(build_app(router, token), sock, None)
    finally:
        args.state_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
