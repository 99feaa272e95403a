"""Shared fixtures. Offline plans are cached per (stack, overrides): a plan is deterministic
and running one takes the Pulumi runtime, so each is built once per test session.

Work shared between tests (`make test` runs `pytest -n 2 --dist loadgroup`): a session or
module fixture runs once per xdist worker that runs a test using it, so the tests that share
an expensive one are kept on one worker. `SHARED_SETUP` names them, and
`pytest_xdist_make_scheduler` hands each such group to a single worker. This is done here,
on the controller and from node ids, rather than with `xdist_group` marks: with pytest 9.2
and pytest-xdist 3.8 the marks are ignored (xdist suffixes the node id through a field pytest
no longer reads, pytest-dev/pytest-xdist#1386), and the demo and the ONNX export fixture ran
on both workers.

Plans are shared between the workers too: the first worker to build a plan writes it
(pickled) to a folder the controller creates for the run, and the other worker reads it
instead of running the Pulumi program again.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.controls import evaluate
from mlops.plan import Plan, run_plan
from pipelines.compilers import cache as compile_cache

_PLANS: dict[str, Plan] = {}
_LOOKUPS: dict[str, tuple[Any, ...]] = {}

SHARED_SETUP: dict[str, str] = {
    # the demo: the whole local loop, run once per session (tests/local/conftest.py)
    "tests/local/": "local-loop",
    # module fixtures that train a model, run a pipeline or compile a definition
    "tests/export_sagemaker/test_export_onnx_step.py": "onnx-export-step",
    "tests/export_sagemaker/test_export_sagemaker.py": "onnx-export-compile",
    "tests/clarify/test_clarify_sagemaker.py": "clarify-compile",
    "tests/clarify/test_clarify_config.py": "clarify-splits",
    "tests/pipelines/test_local.py": "local-pipeline-run",
    "tests/pipelines/test_drift_step.py": "drift-step",
    "tests/pipelines/test_sagemaker.py": "sagemaker-compile",
    "tests/pipelines/test_argo.py": "argo-compile",
    "tests/pipelines/test_azureml.py": "azureml-compile",
    "tests/release/test_release_aws.py": "release-aws",
    "tests/onprem/test_bridge.py": "onprem-bridge",
    "tests/onprem/test_checkov.py": "checkov-scan",
    # the serving tests' session fixture `run` (a local pipeline run: tests/serving/conftest.py)
    "tests/serving/test_batch.py": "serving-champion",
    "tests/serving/test_catalog.py": "serving-champion",
    "tests/serving/test_export.py": "serving-champion",
    "tests/serving/test_explain.py": "serving-champion",
    "tests/serving/test_scoring.py": "serving-champion",
    "tests/unit/test_docs.py": "generated-docs",
    # the fresh interpreter that records which pipeline SDKs a plan imports
    "tests/pipelines/test_compile_cache.py::test_a_plan_with": "sdk-probe",
    "tests/pipelines/test_compile_cache.py::test_a_miss": "sdk-probe",
}
"""Node id prefix -> the one xdist worker group its tests run in (the rest spread freely)."""


def shared_setup_group(nodeid: str) -> str | None:
    """The group of `nodeid` in `SHARED_SETUP` (the longest matching prefix), or None."""
    matches = [prefix for prefix in SHARED_SETUP if nodeid.startswith(prefix)]
    return SHARED_SETUP[max(matches, key=len)] if matches else None


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown when xdist is off (-p no:xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` with the groups of `SHARED_SETUP` (and any working xdist_group)."""
    if config.getoption("dist", None) != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class SharedSetupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            group = shared_setup_group(nodeid)
            return f"group:{group}" if group else super()._split_scope(nodeid)

    return SharedSetupScheduling(config, log)


_SHARED_PLANS: Path | None = None
"""The run's folder of pickled plans, on an xdist worker (None without xdist)."""


def pytest_configure(config: pytest.Config) -> None:
    global _SHARED_PLANS
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None and worker_input.get("mlops_plans"):
        _SHARED_PLANS = Path(worker_input["mlops_plans"])
    elif worker_input is None and config.getoption("dist", "no") != "no":
        config.mlops_plans = tempfile.mkdtemp(prefix="mlops-test-plans-")  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)  # an xdist hook, on the controller
def pytest_configure_node(node: Any) -> None:
    node.workerinput["mlops_plans"] = getattr(node.config, "mlops_plans", "")


def pytest_unconfigure(config: pytest.Config) -> None:
    if getattr(config, "mlops_plans", None):
        shutil.rmtree(config.mlops_plans, ignore_errors=True)


def _shared_path(key: str) -> Path | None:
    if _SHARED_PLANS is None:
        return None
    return _SHARED_PLANS / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pickle"


def _build(key: str, stack: str, overrides: dict[str, Any]) -> Plan:
    """Run the plan, keep its compile-cache lookups, and leave it for the other worker."""
    with compile_cache.recording() as calls:
        plan = run_plan(stack, overrides=overrides or None)
    _LOOKUPS[key] = tuple(calls)
    path = _shared_path(key)
    if path is not None and not path.exists():
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(path)  # whole or absent: the other worker never reads half a plan
    return plan


def get_plan(stack: str, **overrides: Any) -> Plan:
    key = json.dumps([stack, overrides], sort_keys=True)
    if key not in _PLANS:
        path = _shared_path(key)
        if path is not None and path.exists():
            _PLANS[key] = pickle.loads(path.read_bytes())
        else:
            _PLANS[key] = _build(key, stack, overrides)
    return _PLANS[key]


def plan_lookups(stack: str) -> tuple[Any, ...]:
    """The compile-cache lookups (`pipelines.compilers.cache.Lookup`: artifact, hit, ...)
    that the shared plan of `stack` made (built here if this worker read it from disk: the
    lookups recompile, so they are not shared)."""
    key = json.dumps([stack, {}], sort_keys=True)
    if key not in _LOOKUPS:
        _PLANS[key] = _build(key, stack, {})
    return _LOOKUPS[key]


@pytest.fixture
def plan_for() -> Callable[..., Plan]:
    """`plan_for("acme-prod", model="5")` -> the offline Plan of that stack."""
    return get_plan


@pytest.fixture(scope="module")
def offline() -> Iterator[None]:
    """No credentials, no config files, and any attempt to open a socket fails the test."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("AWS_"):
            del os.environ[key]
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    real_connect = socket.socket.connect

    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"compile_sagemaker opened a connection to {address}")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    yield
    socket.socket.connect = real_connect  # type: ignore[method-assign]
    os.environ.clear()
    os.environ.update(saved)


# Property-based tests (hypothesis): `ci` is the default, small enough for the suite budget
# and derandomized so a run is repeatable; `pytest --hypothesis-profile=long` explores more.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "long",
    max_examples=150,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def control_status(records: list, platform: str, control_id: str, environment: str = "prod") -> str:
    """The status one control has on `records` (pass, fail, waived, suppressed, n/a)."""
    findings = evaluate(records, platform=platform, environment=environment)
    return next(f.status for f in findings if f.control.id == control_id)
