"""Serving: requests/s and p50/p99 latency of the kit's endpoint against its peers, one run.

    .venv/bin/python -m benchmarks.serving [--seconds 10] [--rounds 2] [--connections 8]

Side by side, on the same model (the sklearn pipeline the local pipeline trains on the example
data) and the same `dataframe_split` body, at 1 row and 100 rows:

- the kit endpoint (router + model server, two workers per version: what clients call), and
  the kit model server alone (the image's `serve`, SageMaker's path);
- `mlflow models serve` (uvicorn, one worker, `--env-manager local`);
- MLServer with mlserver-mlflow, on `/invocations` and on the v2 protocol (per-column tensors);
- BentoML (a `@bentoml.service` loading the same pickle), one and two workers;
- the floor: Starlette parsing JSON with orjson into numpy and calling the estimator's
  `predict`, one and two uvicorn processes (SO_REUSEPORT, TCP_NODELAY): what is left once
  MLflow's machinery is gone.

Peers are installed by this script in their own virtual environments under
~/.cache/mlops-bench/<peer> (with uv, the scikit-learn, numpy and cloudpickle versions of the
kit, so the pickle loads), never in the kit's. A peer that cannot be installed shows as such in
the table. The load generator is wrk (installed with apt-get when missing and possible),
one thread, `--connections` keep-alive connections, on the same two cores as the servers:
numbers are what one box does end to end. Each cell is the median of `--rounds` rounds,
with the range.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import requests

from benchmarks._common import write_section

CACHE = Path.home() / ".cache" / "mlops-bench"
PEERS = {
    # uvloop 0.22+ breaks MLServer 1.7 inference workers (get_event_loop in a fresh process)
    "mlserver": ["mlserver", "mlserver-mlflow", "uvloop<0.22"],
    "bentoml": ["bentoml==1.4.40", "pandas"],
    "floor": ["starlette", "uvicorn", "orjson"],
}
FLOOR = """
import os, socket, sys
import cloudpickle, numpy as np, orjson, uvicorn, warnings
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

warnings.filterwarnings("ignore")
model = cloudpickle.load(open(sys.argv[1], "rb"))


async def invocations(request):
    split = orjson.loads(await request.body())["dataframe_split"]
    predictions = model.predict(np.array(split["data"], dtype=np.float64))
    return Response(orjson.dumps({"predictions": predictions.tolist()}),
                    media_type="application/json")


async def ping(request):
    return Response(b"\\n")

app = Starlette(routes=[Route("/invocations", invocations, methods=["POST"]),
                        Route("/ping", ping)])
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("127.0.0.1", int(sys.argv[2])))
sock.listen(2048)
uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
"""
BENTO = """
import os, cloudpickle, numpy as np, warnings
import bentoml

warnings.filterwarnings("ignore")


@bentoml.service(workers=int(os.environ["BENCH_WORKERS"]))
class Model:
    def __init__(self) -> None:
        self.model = cloudpickle.load(open(os.environ["BENCH_PICKLE"], "rb"))

    @bentoml.api
    def invocations(self, dataframe_split: dict) -> dict:
        rows = np.array(dataframe_split["data"], dtype=np.float64)
        return {"predictions": self.model.predict(rows).tolist()}
"""
WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""


@dataclass
class Result:
    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    failed: int = 0
    note: str = ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: apt-get install wrk (or brew install wrk)")
    return found


def peer_python(peer: str) -> Path | None:
    """The peer's own virtual environment, created once under ~/.cache/mlops-bench."""
    home = CACHE / peer
    python = home / "bin" / "python"
    stamp = home / ".installed"
    if stamp.is_file():
        return python
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    pins = [f"{p}=={metadata.version(p)}" for p in ("scikit-learn", "numpy", "cloudpickle")]
    CACHE.mkdir(parents=True, exist_ok=True)
    log = CACHE / f"{peer}.log"
    with open(log, "w") as out:
        made = subprocess.run(
            [uv, "venv", "-q", "--python", "3.11", str(home)], stdout=out, stderr=out
        )
        done = made.returncode == 0 and (
            subprocess.run(
                [uv, "pip", "install", "-q", "--python", str(python), *PEERS[peer], *pins],
                stdout=out,
                stderr=out,
            ).returncode
            == 0
        )
    if not done:
        print(f"{peer}: cannot be installed here (see {log})", file=sys.stderr)
        return None
    stamp.touch()
    return python


def wait_http(url: str, timeout: float = 180, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def wrk(url: str, body: Path, seconds: int, connections: int, tmp: Path) -> dict[str, float]:
    script = tmp / "post.lua"
    script.write_text(WRK_LUA)
    env = {**os.environ, "BENCH_BODY": str(body)}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not found:
            return float("nan")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = int(bad.group(1)) if bad else 0
    failed += sum(map(int, errors.groups())) if errors else 0
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "failed": failed}


class Server:
    """A started server: its URLs and how to stop it."""

    def __init__(self, procs: list[subprocess.Popen], stop: Callable[[], None] | None = None):
        self.procs, self._stop = procs, stop

    def stop(self) -> None:
        if self._stop:
            self._stop()
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.Popen(
        argv,
        stdout=open(log, "ab"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--only", default="", help="comma-separated server labels (debugging)")
    args = parser.parse_args(argv)
    ensure_wrk()
    from pipelines.data import LABEL, breast_cancer
    from pipelines.definition import PipelineSettings
    from pipelines.local import run_local
    from pipelines.serving.endpoint import start_endpoint

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    result = run_local(PipelineSettings(client="bench"), workdir=tmp, progress=False)
    uri = result.registration["source"]
    folder = Path(uri.removeprefix("file://"))
    pickle = folder / "model.pkl"
    frame = breast_cancer().drop(columns=LABEL)
    bodies: dict[int, dict[str, Path]] = {}
    for rows in (1, 100):
        part = frame.head(rows)
        split = {"dataframe_split": part.to_dict(orient="split")}
        split["dataframe_split"].pop("index")
        v2 = {
            "inputs": [
                {"name": c, "shape": [rows], "datatype": "FP64", "data": part[c].tolist()}
                for c in part.columns
            ]
        }
        bodies[rows] = {}
        for kind, obj in (("split", split), ("v2", v2)):
            path = tmp / f"body-{kind}-{rows}.json"
            path.write_text(json.dumps(obj))
            bodies[rows][kind] = path
    logs = tmp / "logs"
    logs.mkdir()
    py = {peer: peer_python(peer) for peer in PEERS}

    def kit_endpoint() -> tuple[Server, str, str]:
        ep = start_endpoint(tmp / "kit", port=0, workers=2)
        ep.add_version("1", uri)
        ep.set_traffic({"1": 100})
        return Server([], ep.stop), f"{ep.url}/invocations", "split"

    def kit_serve() -> tuple[Server, str, str]:
        port = free_port()
        proc = _spawn(
            [
                sys.executable,
                "-m",
                "pipelines.serving.model_server",
                "--model-uri",
                uri,
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            logs / "kit-serve.log",
        )
        wait_http(f"http://127.0.0.1:{port}/ping", proc=proc)
        return Server([proc]), f"http://127.0.0.1:{port}/invocations", "split"

    def mlflow_serve() -> tuple[Server, str, str]:
        port = free_port()
        bin_dir = str(Path(sys.executable).parent)  # `mlflow models serve` runs `uvicorn`
        proc = _spawn(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                uri,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            logs / "mlflow.log",
            env={"PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
        )
        wait_http(f"http://127.0.0.1:{port}/ping", proc=proc)
        return Server([proc]), f"http://127.0.0.1:{port}/invocations", "split"

    def mlserver(kind: str) -> Callable[[], tuple[Server, str, str]]:
        def start() -> tuple[Server, str, str]:
            home = tmp / "mlserver"
            (home / "model").mkdir(parents=True, exist_ok=True)
            port = free_port()
            (home / "settings.json").write_text(
                json.dumps(
                    {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
                )
            )
            (home / "model" / "model-settings.json").write_text(
                json.dumps(
                    {
                        "name": "model",
                        "implementation": "mlserver_mlflow.MLflowRuntime",
                        "parameters": {"uri": str(folder)},
                    }
                )
            )
            mlserver_bin = str(Path(py["mlserver"]).parent / "mlserver")
            proc = _spawn([mlserver_bin, "start", str(home)], logs / "mlserver.log", cwd=home)
            wait_http(f"http://127.0.0.1:{port}/v2/models/model/ready", proc=proc)
            path = "/invocations" if kind == "split" else "/v2/models/model/infer"
            return Server([proc]), f"http://127.0.0.1:{port}{path}", kind

        return start

    def bento(workers: int) -> Callable[[], tuple[Server, str, str]]:
        def start() -> tuple[Server, str, str]:
            home = tmp / "bento"
            home.mkdir(exist_ok=True)
            (home / "service.py").write_text(BENTO)
            port = free_port()
            bento_bin = str(Path(py["bentoml"]).parent / "bentoml")
            proc = _spawn(
                [bento_bin, "serve", "service:Model", "--port", str(port), "--host", "127.0.0.1"],
                logs / "bentoml.log",
                env={
                    "BENCH_WORKERS": str(workers),
                    "BENCH_PICKLE": str(pickle),
                    "BENTOML_HOME": str(home / "home"),
                    "BENTOML_DO_NOT_TRACK": "true",
                },
                cwd=home,
            )
            wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)
            return Server([proc]), f"http://127.0.0.1:{port}/invocations", "split"

        return start

    def floor(workers: int) -> Callable[[], tuple[Server, str, str]]:
        def start() -> tuple[Server, str, str]:
            script = tmp / "floor.py"
            script.write_text(FLOOR)
            port = free_port()
            procs = [
                _spawn([str(py["floor"]), str(script), str(pickle), str(port)], logs / "floor.log")
                for _ in range(workers)
            ]
            wait_http(f"http://127.0.0.1:{port}/ping", proc=procs[0])
            time.sleep(1.0)  # the second process binds a moment later
            return Server(procs), f"http://127.0.0.1:{port}/invocations", "split"

        return start

    servers: dict[str, tuple[str | None, Callable[[], tuple[Server, str, str]]]] = {
        "kit endpoint (router + model server, 2 workers)": (None, kit_endpoint),
        "kit `serve` alone (image entry point, 2 workers)": (None, kit_serve),
        "`mlflow models serve` (1 worker)": (None, mlflow_serve),
        "MLServer + mlserver-mlflow, `/invocations`": ("mlserver", mlserver("split")),
        "MLServer + mlserver-mlflow, v2 `/infer`": ("mlserver", mlserver("v2")),
        "BentoML 1.4.40, 1 worker": ("bentoml", bento(1)),
        "BentoML 1.4.40, 2 workers": ("bentoml", bento(2)),
        "floor (Starlette + orjson + `predict`), 1 process": ("floor", floor(1)),
        "floor (Starlette + orjson + `predict`), 2 processes": ("floor", floor(2)),
    }
    if args.only:
        wanted = args.only.split(",")
        servers = {k: v for k, v in servers.items() if any(w in k for w in wanted)}
    results: dict[tuple[str, int], Result] = {}
    load = os.getloadavg()[0]
    for round_ in range(args.rounds):
        for label, (peer, start) in servers.items():
            cells = [results.setdefault((label, rows), Result()) for rows in (1, 100)]
            if peer is not None and py[peer] is None:
                for cell in cells:
                    cell.note = "cannot be installed here"
                continue
            try:
                server, url, kind = start()
            except Exception as exc:  # noqa: BLE001 - a peer that does not start is reported
                for cell in cells:
                    cell.note = f"did not start: {exc}"[:80]
                continue
            try:
                for rows, cell in zip((1, 100), cells, strict=True):
                    body = bodies[rows][kind]
                    check = requests.post(
                        url,
                        data=body.read_bytes(),
                        headers={"content-type": "application/json"},
                        timeout=30,
                    )
                    if check.status_code != 200:
                        cell.note = f"answers {check.status_code}: {check.text[:60]}"
                        continue
                    wrk(url, body, 2, args.connections, tmp)  # warm up
                    stats = wrk(url, body, args.seconds, args.connections, tmp)
                    print(f"round {round_ + 1} {label} x{rows}: {stats}", flush=True)
                    cell.rps.append(stats["rps"])
                    cell.p50.append(stats["p50"])
                    cell.p99.append(stats["p99"])
                    cell.failed += int(stats["failed"])
            finally:
                server.stop()
    lines = []
    for label in servers:
        row = [label]
        for rows in (1, 100):
            cell = results[(label, rows)]
            if not cell.rps:
                row += [cell.note or "no result", "", ""]
                continue
            row += [
                f"{statistics.median(cell.rps):.0f} ({min(cell.rps):.0f}–{max(cell.rps):.0f})",
                f"{statistics.median(cell.p50):.1f}",
                f"{max(cell.p99):.1f}",
            ]
        lines.append("| " + " | ".join(row) + " |")
    body_md = (
        f"wrk, 1 thread, {args.connections} keep-alive connections, {args.seconds} s per "
        f"measurement after a 2 s warm-up, {args.rounds} rounds (median, range); the same "
        "`dataframe_split` body everywhere (v2: the same rows as per-column tensors). Load "
        f"average {load:.1f} before the first round. p99 is the worst round's.\n\n"
        "| server | 1 row: requests/s | p50 ms | p99 ms | 100 rows: requests/s | p50 ms "
        "| p99 ms |\n|---|---|---|---|---|---|---|\n" + "\n".join(lines)
    )
    write_section("serving", "Serving throughput and latency", body_md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
