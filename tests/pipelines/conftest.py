"""Shared fixtures: one end-to-end local run per test session, reused by the tests that need a
registered champion (cache, drift, gate)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipelines.data import breast_cancer
from pipelines.definition import PipelineSettings
from pipelines.local import RunResult, run_local


@pytest.fixture(scope="session")
def good_frame() -> pd.DataFrame:
    return breast_cancer()


@pytest.fixture(scope="session")
def local_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-run")


@pytest.fixture(scope="session")
def first_run(local_workdir: Path) -> RunResult:
    """An end-to-end run on the packaged data in a fresh workdir: registers version 1."""
    return run_local(PipelineSettings(client="test"), workdir=local_workdir, progress=False)
