"""The HTTP machinery under the model server and the router, on a real socket in-process:
header and body read timeouts, TCP_NODELAY whatever socket uvicorn is handed, and the
router's capture rotation and size cap."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.serving.router import Router
from pipelines.serving.server import Hardening, _protocol_class, send_json


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    nodelay = scope.get("state", {}).get("tcp_nodelay")
    body = json.dumps({"nodelay": nodelay, "size": len(scope.get("body", b""))}).encode()
    await send_json(send, 200, body)


@pytest.fixture()
def server() -> Iterator[tuple[str, int]]:
    """Our protocol and hardening on a socket made the way that defeats asyncio's own
    TCP_NODELAY (protocol 0, as uvicorn's multi-worker mode hands it over)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    app = Hardening(echo, version="3", max_body_bytes=1000, body_timeout=0.5)
    config = uvicorn.Config(
        app, log_level="warning", http=_protocol_class(0.5), lifespan="on", access_log=False
    )
    srv = uvicorn.Server(config)
    srv.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield sock.getsockname()
    srv.should_exit = True
    thread.join(10)


def _exchange(address: tuple[str, int], data: bytes, wait: float = 0.0) -> bytes:
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(data)
        if wait:
            time.sleep(wait)
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"connection: close" not in b"".join(chunks):
                head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    return b"".join(chunks)


def test_connections_get_tcp_nodelay_even_from_a_protocol_0_socket(server) -> None:
    answer = _exchange(server, b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["nodelay"] is True


def test_slow_request_headers_get_408_and_the_connection_closes(server) -> None:
    answer = _exchange(server, b"POST /invocations HTTP/1.1\r\nhost: x\r\n", wait=1.0)
    assert answer.startswith(b"HTTP/1.1 408")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error_code"] == "REQUEST_TIMEOUT"


def test_a_body_slower_than_the_timeout_gets_408(server) -> None:
    head = (
        b"POST /invocations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 100\r\n\r\n"
    )
    answer = _exchange(server, head + b'{"a": 1', wait=1.0)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"REQUEST_TIMEOUT" in answer


def test_a_body_over_the_limit_gets_413_and_one_within_it_passes(server) -> None:
    head = b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-type: text/csv\r\ncontent-length: %d\r\n\r\n"
    big = _exchange(server, head % 2000 + b"1" * 2000)
    assert big.startswith(b"HTTP/1.1 413") and b"REQUEST_TOO_LARGE" in big
    small = _exchange(server, head % 10 + b"1" * 10)
    assert small.startswith(b"HTTP/1.1 200")
    assert json.loads(small.partition(b"\r\n\r\n")[2])["size"] == 10


def test_capture_rotates_files_and_keeps_under_its_cap(tmp_path: Path) -> None:
    router = Router(
        run_dir=tmp_path / "run",
        capture_dir=tmp_path / "capture",
        capture_percent=100,
        max_body_bytes=1000,
        capture_file_bytes=2_000,
        capture_max_bytes=10_000,
        use_spare=False,
    )
    router.capture_dir.mkdir(parents=True)
    body = json.dumps({"instances": [{"a": 1.0}] * 20}).encode()
    for _ in range(300):
        router._record("1", body, "application/json", b'{"predictions": [1]}', 0.001)
    router._capture.close()
    files = sorted(router.capture_dir.glob("capture-*.jsonl"))
    sizes = [p.stat().st_size for p in files]
    assert len(files) >= 3  # rotated by size within the hour
    assert max(sizes) <= 2_000 + 1_000
    assert sum(sizes) <= 10_000 + 2_000
    assert router.metrics.captured == 300 and router.metrics.capture_pruned > 0
    lines = [json.loads(line) for p in files for line in p.read_text().splitlines()]
    assert lines and {line["version"] for line in lines} == {"1"}
