"""A warm spare for model servers: a process that has imported what scoring needs (numpy,
scikit-learn, pyarrow, uvicorn) and forks a model server on request, so a new version serves
in the time it takes to unpickle its model instead of the seconds those imports take.

    python -m pipelines.serving.spare --exit-with-parent PID

It reads one JSON list of `model_server` arguments per line on stdin and answers
`{"pid": N}` per line on stdout; when a server it forked exits, it writes
`{"exited": N, "code": C}`. The router starts one at its own start-up (`Spare`, with a
`ForkedProcess` handle per server) and falls back to a fresh process
(`python -m pipelines.serving.model_server`) whenever the spare is not there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pipelines.serving.server import exit_with_parent

STOP_TIMEOUT_SECONDS = 10.0

WARM = (
    "numpy",
    "orjson",
    "yaml",
    "cloudpickle",
    "uvicorn",
    "uvloop",
    "httptools",
    "pyarrow.csv",
    "sklearn.base",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.linear_model",
    "uvicorn.protocols.http.httptools_impl",
    "pipelines.serving.model_server",
    "pipelines.serving.scoring",
)


class ForkedProcess:
    """A model server forked by the spare: the asyncio subprocess interface the router uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None
        self._exited = asyncio.Event()

    def exited(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def terminate(self) -> None:
        os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)

    async def wait(self) -> int:
        await self._exited.wait()
        return self.returncode if self.returncode is not None else -1


class Spare:
    """The router's warm spare (`pipelines.serving.spare`): forks model servers on request."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.children: dict[int, ForkedProcess] = {}
        self._ready = asyncio.Event()
        self._pids: asyncio.Queue[int] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pipelines.serving.spare",
            "--exit-with-parent",
            str(os.getpid()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "ready" in message:
                self._ready.set()
            elif "pid" in message:
                self._pids.put_nowait(int(message["pid"]))
            elif "exited" in message:
                child = self.children.pop(int(message["exited"]), None)
                if child is not None:
                    child.exited(int(message["code"]))
        self._ready.clear()
        for child in self.children.values():  # the spare is gone: so are its children
            child.exited(-1)

    async def fork(self, log: Path, server_args: list[str]) -> ForkedProcess | None:
        """A model server forked by the spare; None when the spare is not (yet) there."""
        process = self.process
        if process is None or process.returncode is not None:
            return None
        deadline = time.monotonic() + 60
        while not self._ready.is_set():  # still importing: waiting beats a second import
            if process.returncode is not None or time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)
        async with self._lock:
            assert process.stdin is not None
            process.stdin.write((json.dumps([str(log), *server_args]) + "\n").encode())
            await process.stdin.drain()
            try:
                pid = await asyncio.wait_for(self._pids.get(), 10)
            except TimeoutError:
                return None
        child = ForkedProcess(pid)
        self.children[pid] = child
        return child

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            await terminate(self.process)
        if self._reader is not None:
            self._reader.cancel()


async def terminate(process: Any) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_SECONDS; wait for the exit."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _reap(out: threading.Lock) -> None:
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(0.2)
            continue
        with out:
            sys.stdout.write(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}))
            sys.stdout.write("\n")
            sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipelines.serving.spare", description=__doc__)
    parser.add_argument("--exit-with-parent", type=int, default=0, metavar="PID")
    args = parser.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if args.exit_with_parent:
        exit_with_parent(args.exit_with_parent)
    import importlib

    for module in WARM:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    # after the warm imports above, so a fork finds every scoring module already loaded
    from pipelines.serving import model_server

    out = threading.Lock()
    threading.Thread(target=_reap, args=(out,), name="reaper", daemon=True).start()
    with out:
        print(json.dumps({"ready": os.getpid()}), flush=True)
    spare = os.getpid()
    for line in sys.stdin:
        try:
            server_args = [str(a) for a in json.loads(line)]
        except ValueError:
            continue
        log = server_args.pop(0)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                sys.stdout = os.fdopen(1, "w", buffering=1)
                sys.stderr = os.fdopen(2, "w", buffering=1)
                code = model_server.main([*server_args, "--exit-with-parent", str(spare)])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - a forked child must never return here
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        with out:
            print(json.dumps({"pid": pid}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
