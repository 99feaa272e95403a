"""Shared fixtures. Offline plans are cached per (stack, overrides): a plan is deterministic
and running one takes the Pulumi runtime, so each is built once per test session."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mlops.plan import Plan, run_plan

_PLANS: dict[str, Plan] = {}


def get_plan(stack: str, **overrides: Any) -> Plan:
    key = json.dumps([stack, overrides], sort_keys=True)
    if key not in _PLANS:
        _PLANS[key] = run_plan(stack, overrides=overrides or None)
    return _PLANS[key]


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
