"""Start, find, drive and stop the local endpoint (the router process) from ordinary code.

    endpoint = start_endpoint(workdir, port=8080)
    endpoint.add_version("1", model_uri)
    endpoint.set_traffic({"1": 100})
    endpoint.stop()

The endpoint's state file (`<workdir>/endpoint/endpoint.json`, mode 0600) holds its URL, pid
and admin token; `find_endpoint` reads it, and removes it when the process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

READY_TIMEOUT_SECONDS = 60.0


class EndpointError(RuntimeError):
    """The endpoint refused or failed an operation; the message says what to do."""


def endpoint_dir(workdir: Path) -> Path:
    return Path(workdir) / "endpoint"


def state_file(workdir: Path) -> Path:
    return endpoint_dir(workdir) / "endpoint.json"


def capture_dir(workdir: Path) -> Path:
    return Path(workdir) / "capture"


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie child of this process is reaped and counts as gone."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Endpoint:
    """A running local endpoint and its admin API."""

    url: str
    pid: int
    token: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    """Set when this process started the endpoint (and so owns it)."""

    # public contract ---------------------------------------------------------------------
    def ping(self, timeout: float = 2.0) -> int:
        return requests.get(f"{self.url}/ping", timeout=timeout).status_code

    def invoke(
        self,
        payload: Any,
        *,
        content_type: str = "application/json",
        version: str | None = None,
        timeout: float = 30.0,
    ) -> requests.Response:
        """POST to /invocations (or straight to one version's server, bypassing the weights)."""
        body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        path = f"/-/backends/{version}/invocations" if version else "/invocations"
        return requests.post(
            self.url + path,
            data=body,
            timeout=timeout,
            headers={"content-type": content_type, **self._admin()},
        )

    def metrics(self) -> str:
        return requests.get(f"{self.url}/metrics", timeout=5).text

    # admin -------------------------------------------------------------------------------
    def _admin(self) -> dict[str, str]:
        return {"x-admin-token": self.token}

    def _call(self, method: str, path: str, timeout: float = 30.0, **kwargs: Any) -> Any:
        try:
            resp = requests.request(
                method, self.url + path, headers=self._admin(), timeout=timeout, **kwargs
            )
        except requests.ConnectionError as exc:
            raise EndpointError(
                f"the endpoint at {self.url} does not answer; start it with `mlops serve`"
            ) from exc
        if resp.status_code >= 400:
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text
            raise EndpointError(message)
        return resp.json()

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/-/state", timeout=5)

    def add_version(self, version: str, model_uri: str, timeout: float = 120.0) -> dict:
        return self._call(
            "POST",
            "/-/backends",
            json={"version": version, "model_uri": model_uri, "timeout": timeout},
            timeout=timeout + 10,
        )

    def version_ping(self, version: str) -> int:
        return requests.get(
            f"{self.url}/-/backends/{version}/ping", headers=self._admin(), timeout=5
        ).status_code

    def set_traffic(self, weights: dict[str, float]) -> dict:
        return self._call("PUT", "/-/traffic", json={"weights": weights})

    def remove_version(self, version: str, drain_seconds: float = 30.0) -> dict:
        return self._call(
            "DELETE",
            f"/-/backends/{version}",
            params={"drain_seconds": drain_seconds},
            timeout=drain_seconds + 30,
        )

    def serving(self) -> dict[str, float]:
        """{version: weight} of the versions that take traffic."""
        versions = self.state()["versions"]
        return {v: info["weight"] for v, info in versions.items() if info["weight"] > 0}

    # lifecycle ---------------------------------------------------------------------------
    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the router (it stops its model servers) and wait for it to exit."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        elif _alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
        state_file(self.workdir).unlink(missing_ok=True)


def find_endpoint(workdir: Path) -> Endpoint | None:
    """The endpoint recorded under `workdir` when its process is alive and answers; else None."""
    path = state_file(workdir)
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    endpoint = Endpoint(info["url"], int(info["pid"]), info["token"], Path(workdir))
    if not _alive(endpoint.pid):
        path.unlink(missing_ok=True)
        return None
    try:
        endpoint.state()
    except (EndpointError, requests.RequestException):
        return None
    return endpoint


def start_endpoint(
    workdir: Path,
    *,
    port: int = 8080,
    capture_percent: int = 100,
    detach: bool = False,
    max_body_bytes: int | None = None,
    workers: int | None = None,
    timeout: float = READY_TIMEOUT_SECONDS,
) -> Endpoint:
    """Start the router in its own process group and wait until it answers.

    `workers`: model server processes per version (None: `MLOPS_SERVE_WORKERS` when set,
    else one per core).

    Attached (the default), the router exits with this process; detached, it keeps running
    (stop it with `mlops serve stop`)."""
    workdir = Path(workdir).resolve()
    running = find_endpoint(workdir)
    if running is not None:
        raise EndpointError(
            f"an endpoint already runs at {running.url} (pid {running.pid}); "
            "use it, or stop it with `mlops serve stop`"
        )
    path = state_file(workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    argv = [
        sys.executable,
        "-m",
        "pipelines.serving.router",
        "--state-file",
        str(path),
        "--capture-dir",
        str(capture_dir(workdir)),
        "--port",
        str(port),
        "--capture-percent",
        str(capture_percent),
    ]
    if max_body_bytes:
        argv += ["--max-body-bytes", str(max_body_bytes)]
    workers = workers or int(os.environ.get("MLOPS_SERVE_WORKERS", "0") or 0)
    if workers:
        argv += ["--workers", str(workers)]
    if not detach:
        argv += ["--exit-with-parent", str(os.getpid())]
    log = open(endpoint_dir(workdir) / "router.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = (endpoint_dir(workdir) / "router.log").read_text(errors="replace")
            raise EndpointError(
                text.strip().splitlines()[-1]
                if text.strip()
                else f"the endpoint exited with code {process.returncode}"
            )
        if path.is_file():
            info = json.loads(path.read_text())
            endpoint = Endpoint(
                info["url"],
                process.pid,
                info["token"],
                workdir,
                process=None if detach else process,
            )
            with contextlib.suppress(EndpointError, requests.RequestException):
                endpoint.state()
                return endpoint
        time.sleep(0.1)
    process.terminate()
    process.wait(10)
    raise EndpointError(
        f"the endpoint did not answer within {timeout:.0f}s; see "
        f"{endpoint_dir(workdir) / 'router.log'}"
    )
