"""The router's connection pool to one model server: HTTP/1.1 keep-alive over loopback, the
responses parsed by httptools (uvicorn's parser), nothing else on the way.

    pool = Upstream("127.0.0.1", port)
    status, body, content_type = await pool.request("POST", "/invocations", body, headers)
    await pool.close()

A connection the server closed (idle timeout, restart) fails the request with
`UpstreamError`, which the router retries; a connection idle for `idle_seconds` (shorter than
the model server's keep-alive) is not reused.
"""

from __future__ import annotations

import asyncio
import time

import httptools


class UpstreamError(ConnectionError):
    """The model server could not be reached, or closed the connection mid-request."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[tuple[int, bytes, str, bool]] | None = None
        self.body: list[bytes] = []
        self.content_type = "application/json"
        self.closed = False
        self.used = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"bad response from the model server: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(UpstreamError("the model server closed the connection"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        keep = self.parser.should_keep_alive()
        body, self.body = b"".join(self.body), []
        ctype, self.content_type = self.content_type, "application/json"
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body, ctype, keep))


class Upstream:
    """Keep-alive connections to one server, opened on demand and reused last-in first-out."""

    def __init__(self, host: str, port: int, *, idle_seconds: float = 3.0, timeout: float = 60):
        self.host, self.port = host, port
        self.idle_seconds, self.timeout = idle_seconds, timeout
        self._idle: list[_Connection] = []
        self._head = f"host: {host}:{port}\r\n".encode()

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed and now - conn.used < self.idle_seconds:
                return conn
            if conn.transport is not None:
                conn.transport.close()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, self.host, self.port)
        except OSError as exc:
            raise UpstreamError(f"cannot connect to the model server: {exc}") from exc
        return conn

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, str]:
        conn = await self._connection()
        assert conn.transport is not None
        loop = asyncio.get_running_loop()
        conn.waiter = loop.create_future()
        lines = [f"{method} {path} HTTP/1.1\r\n".encode(), self._head]
        lines += [f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items()]
        if body is not None:
            lines.append(b"content-length: %d\r\n\r\n" % len(body))
            lines.append(body)
        else:
            lines.append(b"\r\n")
        conn.transport.write(b"".join(lines))
        timer = loop.call_later(
            self.timeout, conn._fail, UpstreamError("the model server did not answer in time")
        )
        try:
            status, payload, ctype, keep = await conn.waiter
        except BaseException:
            conn.transport.close()
            raise
        finally:
            timer.cancel()
            conn.waiter = None
        if keep and not conn.closed:
            conn.used = time.monotonic()
            self._idle.append(conn)
        else:
            conn.transport.close()
        return status, payload, ctype

    async def close(self) -> None:
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
