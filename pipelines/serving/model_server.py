"""One model version served by MLflow's pyfunc scoring server (FastAPI on uvicorn), hardened.

    python -m pipelines.serving.model_server --model-uri URI --ready-file FILE [--port 0]

What MLflow's app gives: `GET /ping`, `GET /health`, `GET /version`, `POST /invocations` with
JSON (`instances`, `inputs`, `dataframe_split`, `dataframe_records`), CSV or Parquet, schema
enforcement against the model signature, and 4xx answers for input it cannot parse. What this
module adds around it, as ASGI middleware:

- a body limit: a request over `max_body_bytes` is refused with 413 before the model sees it;
- an empty body is refused with 400, a missing Content-Type with 415 (MLflow 3.17 answers
  that one with a 500);
- `X-Model-Version` on every answer, so a caller (and the router) sees which version answered;
- loopback only: the server binds 127.0.0.1; only the container entry point (`serve` in the
  kit image, SageMaker's serving contract) binds all interfaces with `--host 0.0.0.0`;
- it exits when the process that started it dies (no orphans when a supervisor is killed).

Once the model is loaded and the socket bound, the port is written to `--ready-file` as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_error(
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An MLflow-shaped JSON error: {"error_code": ..., "message": ...}."""
    body = json.dumps({"error_code": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Hardening:
    """ASGI middleware: body limit, empty-body check, version header."""

    def __init__(self, app: ASGIApp, *, version: str | None, max_body_bytes: int):
        self.app, self.version, self.max_body_bytes = app, version, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(b"x-model-version", self.version.encode())] if self.version else []

        async def send_with_version(message: Message) -> None:
            if extra and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if scope["method"] != "POST":
            await self.app(scope, receive, send_with_version)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await send_error(
                send,
                413,
                f"request body of {int(declared)} bytes is over the "
                f"limit of {self.max_body_bytes} bytes; send smaller batches",
                "REQUEST_TOO_LARGE",
                extra,
            )
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await send_error(
                    send,
                    413,
                    f"request body is over the limit of "
                    f"{self.max_body_bytes} bytes; send smaller batches",
                    "REQUEST_TOO_LARGE",
                    extra,
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if scope["path"].rstrip("/") == "/invocations" and b"content-type" not in dict(
            scope.get("headers", [])
        ):
            await send_error(
                send,
                415,
                "the request has no Content-Type; send application/json or text/csv",
                "UNSUPPORTED_MEDIA_TYPE",
                extra,
            )
            return
        if not body.strip():
            await send_error(
                send,
                400,
                "the request body is empty; send JSON with one of "
                "instances, inputs, dataframe_split, dataframe_records, or CSV "
                "with a header row",
                "BAD_REQUEST",
                extra,
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_version)


def build_app(
    model_uri: str, *, version: str = "", max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> ASGIApp:
    """MLflow's scoring app for the model at `model_uri`, wrapped in `Hardening`."""
    from mlflow.pyfunc import load_model
    from mlflow.pyfunc.scoring_server import init

    model = load_model(model_uri)
    return Hardening(init(model), version=version or "unknown", max_body_bytes=max_body_bytes)


def _exit_with_parent(parent: int) -> None:
    """Stop this server (SIGTERM to itself) once process `parent` (its starter) is gone.

    The starter passes its own pid: a child that asked `os.getppid()` only after the starter
    died would see its new parent and wait forever."""
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def bind(port: int, host: str = LOOPBACK) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    app: ASGIApp, sock: socket.socket, ready_file: Path | None, extra: dict[str, Any] | None = None
) -> None:
    """Run `app` on uvicorn over the bound socket; write the ready file once it listens."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    server = uvicorn.Server(config)
    if ready_file is not None:
        port = sock.getsockname()[1]
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": port, "pid": os.getpid(), **(extra or {})}))
        tmp.replace(ready_file)
    server.run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.serving.model_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model-uri", required=True, help="MLflow model URI or folder")
    parser.add_argument("--version", default="", help="registry version, for X-Model-Version")
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
        "--exit-with-parent",
        type=int,
        default=0,
        metavar="PID",
        help="stop when process PID (the starter) is gone",
    )
    args = parser.parse_args(argv)
    if args.exit_with_parent:
        _exit_with_parent(args.exit_with_parent)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    try:
        app = build_app(args.model_uri, version=args.version, max_body_bytes=args.max_body_bytes)
    except Exception as exc:  # noqa: BLE001 - any load failure ends this process with a message
        print(f"model_server: cannot load model {args.model_uri}: {exc}", file=sys.stderr)
        return 3
    serve(app, bind(args.port, args.host), args.ready_file, {"version": args.version})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
