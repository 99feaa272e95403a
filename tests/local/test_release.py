"""Release guards: a version that fails its health or smoke check is rolled back while the old
one keeps serving; unapproved versions and cloud stacks are refused; processes do not outlive
the endpoint."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from mlops.cli_local import app
from pipelines.local import default_tracking_uri
from pipelines.loop.demo import DemoResult
from pipelines.loop.traffic import Traffic, payload
from pipelines.release import ReleaseError
from pipelines.release.local import (
    RolloutPlan,
    describe_version,
    release_history,
    release_local,
)
from pipelines.serving.endpoint import Endpoint, find_endpoint, start_endpoint, state_file

NAME = "local-classifier"


def _register_copy(workdir: Path, tmp_path: Path, label: str, break_it, approval: str) -> str:
    """Register a copy of version 2's model folder, altered by `break_it`; return its version."""
    uri = default_tracking_uri(workdir)
    source = Path(urlparse(describe_version(uri, NAME, "2")["source"]).path)
    copy = tmp_path / label
    shutil.copytree(source, copy)
    break_it(copy)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.create_model_version(NAME, copy.as_uri(), tags={"approval_status": approval})
    return str(version.version)


def _wrong_signature(folder: Path) -> None:
    mlmodel = folder / "MLmodel"
    mlmodel.write_text(
        mlmodel.read_text().replace('"name": "mean_radius"', '"name": "radius_of_the_moon"')
    )


def _corrupt_pickle(folder: Path) -> None:
    (folder / "model.pkl").write_bytes(b"this is not a pickle")


@pytest.mark.parametrize(
    ("label", "break_it", "failed_step"),
    [
        ("smoke-fails", _wrong_signature, "health+smoke"),
        ("cannot-load", _corrupt_pickle, "start"),
    ],
)
def test_broken_version_is_rolled_back_and_the_old_one_keeps_serving(
    endpoint: Endpoint, demo_workdir: Path, tmp_path: Path, features, label, break_it, failed_step
) -> None:
    version = _register_copy(demo_workdir, tmp_path, label, break_it, "approved")
    before = len(release_history(demo_workdir))
    record = release_local(
        workdir=demo_workdir,
        tracking_uri=default_tracking_uri(demo_workdir),
        model_name=NAME,
        version=version,
        endpoint=endpoint,
        plan=RolloutPlan(strategy="canary", step_percent=10, bake_seconds=0),
    )
    assert record.outcome == "rolled-back", record.reason
    assert [s["step"] for s in record.steps][-1] == failed_step
    assert record.steps[-1]["ok"] is False
    assert endpoint.serving() == {"2": 100.0}
    assert version not in endpoint.state()["versions"]
    body, ctype = payload(features.head(2), "dataframe_records")
    resp = endpoint.invoke(body, content_type=ctype)
    assert resp.status_code == 200 and resp.headers["x-model-version"] == "2"
    history = release_history(demo_workdir)
    assert len(history) == before + 1 and history[-1]["outcome"] == "rolled-back"
    assert history[-1]["version"] == version and history[-1]["reason"]


def test_pending_version_is_refused_and_nothing_changes(
    endpoint: Endpoint, demo_workdir: Path, tmp_path: Path
) -> None:
    version = _register_copy(demo_workdir, tmp_path, "pending", lambda _p: None, "pending")
    before = len(release_history(demo_workdir))
    with pytest.raises(ReleaseError, match=f"version {version} is pending; approve it"):
        release_local(
            workdir=demo_workdir,
            tracking_uri=default_tracking_uri(demo_workdir),
            model_name=NAME,
            version=version,
            endpoint=endpoint,
        )
    assert len(release_history(demo_workdir)) == before
    assert endpoint.serving() == {"2": 100.0}


def test_releasing_the_serving_version_again_is_unchanged(
    endpoint: Endpoint, demo_workdir: Path
) -> None:
    record = release_local(
        workdir=demo_workdir,
        tracking_uri=default_tracking_uri(demo_workdir),
        model_name=NAME,
        endpoint=endpoint,
    )
    assert record.outcome == "unchanged" and record.version == "2"


def test_local_release_command_refuses_a_cloud_stack_and_names_the_right_one() -> None:
    result = CliRunner().invoke(app, ["release", "acme-dev"])
    assert result.exit_code == 2
    assert "releases only to the local endpoint" in result.output
    assert "mlops release STACK" in result.output


def test_cli_release_without_a_registry_says_how_to_fix_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["release", "local", "--workdir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no local registry" in result.output and "mlops pipeline run" in result.output


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone for our purpose
        return fh.read().split(") ")[1][0] != "Z"


def test_a_model_server_exits_when_the_process_that_started_it_is_killed(
    demo_workdir: Path,
) -> None:
    source = describe_version(default_tracking_uri(demo_workdir), NAME, "1")["source"]
    code = (
        "import os, subprocess, sys, time; p = subprocess.Popen([sys.executable, '-m', "
        "'pipelines.serving.model_server', '--model-uri', sys.argv[1], "
        "'--exit-with-parent', str(os.getpid())]); print(p.pid, flush=True); time.sleep(120)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", code, source], stdout=subprocess.PIPE, text=True
    )
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the model server outlived the process that started it"
    finally:
        parent.kill()


def test_stopping_the_endpoint_ends_its_process_and_removes_its_state(tmp_path: Path) -> None:
    ep = start_endpoint(tmp_path, port=0)
    assert ep.ping() == 503  # up, but no version serves yet
    assert state_file(tmp_path).is_file()
    ep.stop()
    assert ep.process is not None and ep.process.poll() is not None
    assert not state_file(tmp_path).exists()
    assert find_endpoint(tmp_path) is None


def test_cli_serve_status_and_monitor_metrics_show_the_running_endpoint(
    endpoint: Endpoint, demo_workdir: Path
) -> None:
    runner = CliRunner()
    status = runner.invoke(app, ["serve", "status", "--workdir", str(demo_workdir)])
    assert status.exit_code == 0, status.output
    assert endpoint.url in status.output
    metrics = runner.invoke(app, ["monitor", "--metrics", "--workdir", str(demo_workdir)])
    assert metrics.exit_code == 0
    assert 'mlops_endpoint_traffic_weight{version="2"} 100\n' in metrics.output


def test_cli_monitor_without_new_traffic_needs_more_rows(demo_workdir: Path) -> None:
    result = CliRunner().invoke(
        app, ["monitor", "--workdir", str(demo_workdir), "--min-rows", "100000"]
    )
    assert result.exit_code == 0
    assert "need 100000" in result.output


def _bad_client(url: str, stop: threading.Event, sent: list[int]) -> None:
    """Everything a client without the admin token can get wrong, over and over: malformed
    bodies, wrong types, nesting, wrong routes, and connections dropped mid-request."""
    host, port = urlparse(url).hostname, urlparse(url).port
    cols = [f"c{i}" for i in range(30)]
    bodies = [
        (b"[" * 100_000 + b"]" * 100_000, "application/json"),
        (
            json.dumps({"dataframe_split": {"columns": cols, "data": [["1"] * 30]}}).encode(),
            "application/json",
        ),
        (json.dumps({"instances": [{"mean_radius": True}]}).encode(), "application/json"),
        (b"\xff\xfe", "text/csv"),
        (b"<a/>", "application/xml"),
        (b'{"inputs": [{"name": "x"}]}', "application/json"),
    ]
    session = requests.Session()
    while not stop.is_set():
        for body, ctype in bodies:
            path = "/v2/models/m/infer" if body.startswith(b'{"inputs"') else "/invocations"
            session.post(url + path, data=body, headers={"content-type": ctype}, timeout=10)
            sent[0] += 1
        with socket.create_connection((host, port), timeout=5) as raw:  # hang up mid-body
            raw.sendall(
                b"POST /invocations HTTP/1.1\r\ncontent-type: application/json\r\n"
                b'content-length: 1000\r\n\r\n{"inst'
            )
        time.sleep(0.01)


def _overflowing_scaler(folder: Path) -> None:
    """A model that passes the smoke test (its serving example) but fails on most real rows:
    its scaler overflows to infinity away from the example's mean_area, and the classifier
    then refuses the input (a 5xx: a model fault, not a client's)."""
    import cloudpickle
    import numpy as np

    example = json.loads((folder / "serving_input_example.json").read_text())["dataframe_split"]
    j = example["columns"].index("mean_area")
    values = np.array(example["data"], dtype=float)[:, j]
    middle = (values.max() + values.min()) / 2
    with open(folder / "model.pkl", "rb") as fh:
        model = cloudpickle.load(fh)
    scaler = model.steps[0][1]
    scaler.mean_[j] = middle
    scaler.scale_[j] = 2 * max(values.max() - middle, 1.0) / 1e308
    with open(folder / "model.pkl", "wb") as fh:
        cloudpickle.dump(model, fh)


@pytest.fixture(scope="module")
def own_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """An endpoint of this module's own (two workers per version), so the releases under
    traffic leave the session's endpoint alone. Its router and warm spare start once; each
    test gets it back serving version 2 alone (`own_endpoint`)."""
    ep = start_endpoint(tmp_path_factory.mktemp("own"), port=0, workers=2)
    try:
        yield ep
    finally:
        ep.stop()


@pytest.fixture()
def own_endpoint(own_router: Endpoint, demo: DemoResult, demo_workdir: Path) -> Endpoint:
    """The module's endpoint serving version 2 alone (the demo's), whatever the previous test
    released (version 2 started afresh when that release retired it; every other version
    stopped)."""
    versions = own_router.state()["versions"]
    if "2" not in versions:
        source = describe_version(default_tracking_uri(demo_workdir), NAME, "2")["source"]
        own_router.add_version("2", source)
    own_router.set_traffic({"2": 100})
    for version in versions:
        if version != "2":
            own_router.remove_version(version, drain_seconds=0)
    return own_router


def _release_under_traffic(
    ep: Endpoint, demo_workdir: Path, version: str, features, *, bad_client: bool
) -> tuple[Any, int]:
    stop = threading.Event()
    sent = [0]
    bad = threading.Thread(target=_bad_client, args=(ep.url, stop, sent), daemon=True)
    with Traffic(ep.url, features, concurrency=2, batch=1, pause=0.01) as traffic:
        if bad_client:
            bad.start()
        try:
            record = release_local(
                workdir=demo_workdir,
                tracking_uri=default_tracking_uri(demo_workdir),
                model_name=NAME,
                version=version,
                endpoint=ep,
                plan=RolloutPlan(strategy="canary", step_percent=50, bake_seconds=1.0),
            )
        finally:
            stop.set()
            if bad_client:
                bad.join(15)
    assert traffic.stats.sent > 20
    return record, sent[0]


def test_a_bad_client_during_the_bake_does_not_roll_back_a_good_release(
    own_endpoint: Endpoint, demo_workdir: Path, tmp_path: Path, features
) -> None:
    version = _register_copy(demo_workdir, tmp_path, "good", lambda _p: None, "approved")
    record, bad_requests = _release_under_traffic(
        own_endpoint, demo_workdir, version, features, bad_client=True
    )
    assert record.outcome == "released", record.reason
    assert bad_requests >= 12  # the bad client was busy during the bake
    assert own_endpoint.serving() == {version: 100.0}
    state = own_endpoint.state()["versions"][version]
    assert state["errors_4xx"] > 0 and state["errors_5xx"] == 0
    assert state["upstream_errors"] == 0


def test_a_model_that_fails_under_traffic_is_rolled_back_during_the_bake(
    own_endpoint: Endpoint, demo_workdir: Path, tmp_path: Path, features
) -> None:
    version = _register_copy(demo_workdir, tmp_path, "overflows", _overflowing_scaler, "approved")
    record, _ = _release_under_traffic(
        own_endpoint, demo_workdir, version, features, bad_client=False
    )
    assert record.outcome == "rolled-back", record.reason
    assert [s["step"] for s in record.steps][:2] == ["start", "health+smoke"]
    assert record.steps[1]["ok"] is True  # the smoke test passed: the bake caught it
    assert "5xx" in record.reason
    assert own_endpoint.serving() == {"2": 100.0}
