"""Shared fixtures. Offline plans are cached per (stack, overrides): a plan is deterministic
and running one takes the Pulumi runtime, so each is built once per test session."""

from __future__ import annotations

import json
from collections.abc import Callable
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
