"""One model version's server: the lean scoring path (`scoring.py`) on uvicorn, hardened.

    python -m pipelines.serving.model_server --model-uri URI [--workers N] [--ready-file FILE]

Routes (MLflow's scoring contract, SageMaker's serving contract, and the Open Inference
Protocol v2 of KServe and MLServer, so one client works on every blueprint):

    GET  /ping, /health                     200 once the model is loaded
    GET  /version                           the MLflow version of the scoring contract
    POST /invocations                       JSON (dataframe_split, dataframe_records,
                                            instances, inputs), CSV or Parquet; answers JSON,
                                            or CSV with `Accept: text/csv`
    GET  /v2/health/live, /v2/health/ready, /v2/models/{name}[/versions/{v}][/ready]
    POST /v2/models/{name}[/versions/{v}]/infer

Every client error is a 4xx with `{"error_code", "message"}` (`scoring.py` says which);
a 5xx means the model failed. Around the app (`server.Hardening`): the body limit (413;
`--max-body-bytes`, default 100 MiB, SageMaker batch transform's largest payload), header and
body read timeouts (408), `X-Model-Version` on every answer. The server binds loopback; only
the container entry point (`serve` in the kit image) binds all interfaces (`--host 0.0.0.0`).
`--workers` processes share the port (default: one per core, at most 8). It exits when the
process that started it dies. Once the model is loaded and the socket bound, the port is
written to `--ready-file` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines.serving.scoring import ModelFailed, error_body, load_scorer
from pipelines.serving.server import (
    DEFAULT_MAX_BODY_BYTES,
    HEADER_TIMEOUT_SECONDS,
    LOOPBACK,
    ASGIApp,
    Hardening,
    Receive,
    Scope,
    Send,
    bind,
    default_workers,
    exit_with_parent,
    send_error,
    send_json,
    serve,
)

__all__ = ["DEFAULT_MAX_BODY_BYTES", "LOOPBACK", "ScoringApp", "build_app", "main"]

INLINE_BODY_BYTES = 256 * 1024
"""Bodies up to this size are scored on the event loop (no thread hand-off); larger ones in a
thread, so /ping stays answered during a long batch."""


def _mlflow_version() -> str:
    try:
        return metadata.version("mlflow")
    except metadata.PackageNotFoundError:
        return "unknown"


class ScoringApp:
    """The ASGI app of one model version (behind `Hardening`, which reads the body)."""

    def __init__(self, scorer: Any):
        self.scorer = scorer
        self.version_text = _mlflow_version().encode()
        self.model_ready = b'{"name": "%s", "ready": true}' % scorer.name.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                await _not_allowed(send, "POST")
                return
            headers = dict(scope["headers"])
            result = await self._score(
                self.scorer.invocations,
                scope["body"],
                headers.get(b"content-type", b"").decode("latin-1"),
                headers.get(b"accept", b"").decode("latin-1"),
            )
            await send_json(send, result[0], result[1], content_type=result[2].encode())
            return
        if path.startswith("/v2"):
            await self._v2(scope, path, method, send)
            return
        if path in ("/ping", "/health"):
            nodelay = b"1" if scope.get("state", {}).get("tcp_nodelay") else b"0"
            extra = [(b"x-worker", str(os.getpid()).encode()), (b"x-tcp-nodelay", nodelay)]
            await send_json(send, 200, b"\n", extra)
            return
        if path == "/version":
            await send_json(send, 200, self.version_text)
            return
        await send_error(send, 404, f"no route {path}; see /invocations or /v2", "NOT_FOUND")

    async def _score(self, fn: Any, body: bytes, *args: Any) -> tuple[int, bytes, str]:
        try:
            if len(body) <= INLINE_BODY_BYTES:
                result = fn(body, *args)
            else:
                result = await asyncio.to_thread(fn, body, *args)
            if result is None:  # MLflow's path: in a thread, the loop keeps serving
                result = await asyncio.to_thread(self.scorer.slow_invocations, body, *args)
            return result
        except ModelFailed as exc:
            logging.getLogger(__name__).error("model failure: %s", exc)
            return error_body(500, "MODEL_ERROR", str(exc))

    async def _v2(self, scope: Scope, path: str, method: str, send: Send) -> None:
        parts = path.strip("/").split("/")  # v2 / models / name [/ versions / v] [/ verb]
        if parts in (["v2", "health", "live"], ["v2", "health", "ready"]):
            await send_json(send, 200, b'{"live": true}' if parts[2] == "live" else b"{}")
            return
        if parts == ["v2"]:
            body = b'{"name": "mlops-kit", "version": "%s", "extensions": []}' % (self.version_text)
            await send_json(send, 200, body)
            return
        if len(parts) >= 3 and parts[1] == "models":
            rest = parts[3:]
            if rest[:1] == ["versions"] and len(rest) >= 2:
                rest = rest[2:]
            if rest == ["infer"]:
                if method != "POST":
                    await _not_allowed(send, "POST")
                    return
                status, body, ctype = await self._score(self.scorer.infer_v2, scope["body"])
                await send_json(send, status, body, content_type=ctype.encode())
                return
            if rest == ["ready"]:
                await send_json(send, 200, self.model_ready)
                return
            if rest == []:
                await send_json(send, 200, self.scorer.metadata_v2())
                return
        await send_error(send, 404, f"no v2 route {path}", "NOT_FOUND")


async def _not_allowed(send: Send, allowed: str) -> None:
    await send_error(
        send, 405, f"method not allowed; use {allowed}", "METHOD_NOT_ALLOWED", [(b"allow", b"POST")]
    )


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_app(
    model_uri: str,
    *,
    version: str = "",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    name: str = "model",
) -> ASGIApp:
    """The scoring app for the model at `model_uri`, wrapped in `Hardening`."""
    scorer = load_scorer(model_uri, name=name, version=version)
    return Hardening(
        ScoringApp(scorer), version=version or "unknown", max_body_bytes=max_body_bytes
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.serving.model_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model-uri", required=True, help="MLflow model URI or folder")
    parser.add_argument("--version", default="", help="registry version, for X-Model-Version")
    parser.add_argument("--name", default="model", help="model name on the v2 routes")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port on loopback")
    parser.add_argument(
        "--host",
        choices=(LOOPBACK, "0.0.0.0"),
        default=LOOPBACK,
        help="0.0.0.0 only inside a container (the image's `serve` entry point)",
    )
    parser.add_argument("--ready-file", type=Path, default=None)
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help=f"processes sharing the port (0 = one per core, at most 8: {default_workers()})",
    )
    parser.add_argument("--header-timeout", type=float, default=HEADER_TIMEOUT_SECONDS)
    parser.add_argument(
        "--exit-with-parent",
        type=int,
        default=0,
        metavar="PID",
        help="stop when process PID (the starter) is gone",
    )
    args = parser.parse_args(argv)
    if args.max_body_bytes <= 0:
        parser.error(f"--max-body-bytes={args.max_body_bytes} must be positive")
    workers = args.workers or default_workers()
    # one BLAS thread per worker: the workers are the parallelism
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if args.exit_with_parent:
        exit_with_parent(args.exit_with_parent)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    try:
        app = build_app(
            args.model_uri, version=args.version, max_body_bytes=args.max_body_bytes, name=args.name
        )
    except Exception as exc:  # noqa: BLE001 - any load failure ends this process with a message
        print(f"model_server: cannot load model {args.model_uri}: {exc}", file=sys.stderr)
        return 3
    try:
        sock = bind(args.port, args.host, reuse_port=workers > 1)
    except OSError as exc:
        print(f"model_server: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 3
    serve(
        app,
        sock,
        args.ready_file,
        {"version": args.version},
        workers=workers,
        header_timeout=args.header_timeout,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
