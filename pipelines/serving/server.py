"""The HTTP machinery shared by the model server and the router: binding, worker processes,
uvicorn with its C parser, and the hardening every request passes through.

- `serve(app_factory, ...)` runs `workers` processes on one port: the first binds it, the others
  are forked once the model is loaded (copy-on-write, no second load) and bind the same port with
  SO_REUSEPORT, so the kernel spreads connections over them.
- `Protocol` (uvicorn's httptools protocol) sets TCP_NODELAY on every accepted connection
  itself (uvicorn leaves it to asyncio, which skips sockets it cannot recognise as TCP:
  uvicorn issue #3149) and closes a connection whose request headers take longer than
  `header_timeout` with a 408.
- `Hardening` (ASGI middleware): body limit (413), body read timeout (408), empty body (400),
  missing Content-Type (415), JSON answers for all of them, `X-Model-Version` on every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024
"""SageMaker batch transform's largest payload (MaxPayloadInMB=100), so `serve` takes every
object the kit's transform step sends whole."""
HEADER_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 30.0

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"application/json",
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(
    send: Send,
    status: int,
    message: str,
    code: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An MLflow-shaped JSON error: {"error_code": ..., "message": ...}."""
    body = json.dumps({"error_code": code, "message": message}).encode()
    await send_json(send, status, body, headers)


class Hardening:
    """ASGI middleware: body limit and read timeout, empty-body and Content-Type checks,
    version header. The app behind it gets the whole body in one `http.request` message."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        version: str | None,
        max_body_bytes: int,
        body_timeout: float = BODY_TIMEOUT_SECONDS,
    ):
        self.app, self.version, self.max_body_bytes = app, version, max_body_bytes
        self.body_timeout = body_timeout
        self.extra = [(b"x-model-version", version.encode())] if version else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.extra

        if extra:

            async def send_with_version(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *extra]
                await send(message)

        else:
            send_with_version = send
        if scope["method"] != "POST":
            await self.app(scope, receive, send_with_version)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
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
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body = message.get("body", b"")
        if message.get("more_body", False):
            chunks = [body]
            size = len(body)
            deadline = time.monotonic() + self.body_timeout
            while message.get("more_body", False):
                try:
                    message = await asyncio.wait_for(receive(), deadline - time.monotonic())
                except TimeoutError:
                    await send_error(
                        send,
                        408,
                        f"the request body did not arrive within {self.body_timeout:.0f}s",
                        "REQUEST_TIMEOUT",
                        [*extra, (b"connection", b"close")],
                    )
                    return
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
                        [*extra, (b"connection", b"close")],
                    )
                    return
                chunks.append(chunk)
            body = b"".join(chunks)
        elif len(body) > self.max_body_bytes:
            await send_error(
                send,
                413,
                f"request body is over the limit of {self.max_body_bytes} bytes",
                "REQUEST_TOO_LARGE",
                extra,
            )
            return
        if b"content-type" not in headers:
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
        scope["body"] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_version)


_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: 90\r\n\r\n"
    b'{"error_code": "REQUEST_TIMEOUT", "message": "the request headers did not arrive in time"}'
)


class _Coalescing:
    """A transport whose writes within one turn of the event loop leave as one send: uvicorn
    writes a response's head and body separately, which with TCP_NODELAY is two segments and
    two system calls per answer, and loopback sends cost a lot on small machines."""

    __slots__ = ("_transport", "_loop", "_chunks", "_scheduled")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport, self._loop = transport, loop
        self._chunks: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        self._chunks.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _protocol_class(header_timeout: float) -> type:
    """uvicorn's httptools protocol with TCP_NODELAY and a header read timeout."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class Protocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            sock = transport.get_extra_info("socket")
            nodelay = 0
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            self.app_state = {**self.app_state, "tcp_nodelay": bool(nodelay)}
            super().connection_made(_Coalescing(transport, self.loop))  # type: ignore[arg-type]
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            idle = self.cycle is None or self.cycle.response_complete
            if idle and not self.transport.is_closing():
                self.transport.write(_TIMEOUT_408)
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()  # idle keep-alive is uvicorn's timeout_keep_alive

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return Protocol


def bind(port: int, host: str = LOOPBACK, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def exit_with_parent(parent: int) -> None:
    """Stop this process (SIGTERM to itself) once process `parent` (its starter) is gone.

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


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker the moment its parent dies (uvicorn ends a server stopped by
    a signal by re-raising it, so the parent has no chance to stop its workers itself)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _run(app: ASGIApp, sock: socket.socket, header_timeout: float) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=5,
        server_header=False,
        date_header=False,
        http=_protocol_class(header_timeout),
        loop="uvloop" if _has("uvloop") else "asyncio",
    )
    uvicorn.Server(config).run(sockets=[sock])


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def serve(
    app: ASGIApp,
    sock: socket.socket,
    ready_file: Path | None,
    extra: dict[str, Any] | None = None,
    *,
    workers: int = 1,
    header_timeout: float = HEADER_TIMEOUT_SECONDS,
) -> None:
    """Run `app` on `sock` in `workers` processes; write the ready file once they listen.

    With more than one worker, `sock` must be bound with reuse_port=True: each forked worker
    binds its own socket on the same address, and exits when this process does."""
    host, port = sock.getsockname()[:2]
    parent = os.getpid()
    children: list[int] = []
    for _ in range(1, workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own listening socket, the app inherited
            code = 0
            try:
                _die_with_parent()
                sock.close()
                own = bind(port, host, reuse_port=True)
                exit_with_parent(parent)
                _run(app, own, header_timeout)
            except BaseException:  # noqa: BLE001 - a forked child must never return
                code = 1
            os._exit(code)
        children.append(pid)
    if ready_file is not None:
        tmp = ready_file.with_suffix(".tmp")
        info = {"port": port, "pid": parent, "workers": [parent, *children], **(extra or {})}
        tmp.write_text(json.dumps(info))
        tmp.replace(ready_file)
    try:
        _run(app, sock, header_timeout)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 8
        for pid in children:
            while True:
                try:
                    done = os.waitpid(pid, os.WNOHANG)[0] == pid
                except ChildProcessError:
                    done = True
                if done:
                    break
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, 0)
                    break
                time.sleep(0.05)
