"""The kit image: its Dockerfile's promises, its pinned locks, and the `serve` entry point
(SageMaker's serving contract) run for real against a small MLflow model. No Docker engine
runs here, so the entry point runs on this machine exactly as the image runs it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from core.config import PROJECT_ROOT

DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())


def _names(lock: Path) -> set[str]:
    return {
        line.split("==")[0].lower().replace("_", "-")
        for line in lock.read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_dockerfile_runs_as_non_root_from_the_image_lock() -> None:
    users = re.findall(r"^USER (\S+)", DOCKERFILE, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert "-r requirements-image.lock" in DOCKERFILE
    assert "COPY docker/serve /usr/local/bin/serve" in DOCKERFILE
    assert re.search(r'^CMD \["serve"\]', DOCKERFILE, flags=re.M)


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.lock", ("dev",)), ("requirements-image.lock", ("image",))]
)
def test_locks_pin_every_declared_dependency(lock: str, extras: tuple[str, ...]) -> None:
    pinned = _names(PROJECT_ROOT / lock)
    declared = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        declared += PYPROJECT["project"]["optional-dependencies"][extra]
    missing = sorted(n for n in map(_requirement_name, declared) if n not in pinned)
    assert not missing, f"{lock} lacks {missing}: run `make lock`"


def test_image_lock_carries_no_test_tools() -> None:
    pinned = _names(PROJECT_ROOT / "requirements-image.lock")
    assert not pinned & {"pytest", "moto", "responses", "ruff"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_entry_point_answers_the_sagemaker_contract(tmp_path: Path) -> None:
    import mlflow.sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from pipelines.steps.train import pinned_requirements

    data = load_breast_cancer(as_frame=True)
    X = data.frame.drop(columns="target").iloc[:, :4]
    model = LogisticRegression(max_iter=500).fit(X, data.frame["target"])
    model_dir = tmp_path / "model"
    # saved as the train step saves it: requirements pinned (no inference in a subprocess) and
    # cloudpickle (skops, MLflow's default, scans every loaded module: slow in a test worker)
    mlflow.sklearn.save_model(
        model,
        model_dir,
        input_example=X.head(2),
        pip_requirements=pinned_requirements(),
        serialization_format="cloudpickle",
    )

    port = _free_port()
    # the image's `python` is the one with the kit installed: here, this interpreter
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {
        **os.environ,
        "PATH": path,
        "MODEL_URI": str(model_dir),
        "MODEL_VERSION": "7",
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SERVE_HOST": "127.0.0.1",
    }  # the image binds 0.0.0.0; a test stays on loopback
    proc = subprocess.Popen(
        ["sh", str(PROJECT_ROOT / "docker" / "serve")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
                assert time.monotonic() < deadline, "serve did not answer /ping in 90 s"
                time.sleep(0.5)
        body = json.dumps(
            {"dataframe_split": {"columns": list(X.columns), "data": X.head(3).values.tolist()}}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            answer = json.loads(r.read())
            assert r.headers["X-Model-Version"] == "7"
        assert answer["predictions"] == model.predict(X.head(3)).tolist()
        # a whole object from the batch transform (SplitType=None): 5.4 MB of CSV is answered
        big = pd.concat([X] * 400, ignore_index=True)
        csv = big.to_csv(index=False).encode()
        assert len(csv) > 5_400_000
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=csv, headers={"Content-Type": "text/csv"}
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            assert len(json.loads(r.read())["predictions"]) == len(big)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_takes_every_payload_the_batch_transform_sends_whole() -> None:
    """The transform step sends each object whole up to MaxPayloadInMB; `serve`'s body limit
    is at least that, in the entry point and in the model server's own default."""
    from pipelines.compilers.sagemaker_batch import MAX_PAYLOAD_MB
    from pipelines.serving.server import DEFAULT_MAX_BODY_BYTES

    serve = (PROJECT_ROOT / "docker" / "serve").read_text()
    limit = int(re.search(r"MAX_BODY_BYTES:-(\d+)", serve).group(1))
    assert limit >= MAX_PAYLOAD_MB * 1024 * 1024
    assert DEFAULT_MAX_BODY_BYTES >= MAX_PAYLOAD_MB * 1024 * 1024
