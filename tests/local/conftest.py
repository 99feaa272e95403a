"""One fast demo per test session (the whole loop, on small data); the endpoint it leaves
running serves the contract, malformed-payload and rollback tests, and is stopped at the end.

Every test of this folder runs on one xdist worker, so the demo runs once per session, not
once per worker: see `SHARED_SETUP` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from pipelines.data import LABEL, breast_cancer
from pipelines.loop.demo import DemoOptions, DemoResult, run_demo
from pipelines.serving.endpoint import Endpoint, find_endpoint


@pytest.fixture(scope="session")
def demo_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="session")
def demo(demo_workdir: Path) -> Iterator[DemoResult]:
    options = DemoOptions(
        workdir=demo_workdir, port=0, fast=True, keep_serving=True, progress=False, detach=False
    )
    result = run_demo(options, Console(quiet=True))
    yield result
    running = find_endpoint(demo_workdir)
    if running is not None:
        running.stop()


@pytest.fixture(scope="session")
def endpoint(demo: DemoResult, demo_workdir: Path) -> Endpoint:
    found = find_endpoint(demo_workdir)
    assert found is not None, "the demo left no endpoint running"
    return found


@pytest.fixture(scope="session")
def features() -> pd.DataFrame:
    return breast_cancer().drop(columns=LABEL)
