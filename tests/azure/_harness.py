"""Run one Azure component under the kit's recording mocks (the same ones `mlops plan` uses)
and return what it registered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from core.controls import Record
from mlops.plan import RecordingMocks, RecordingMonitor


def record(build: Callable[[], Any], stack: str = "component-test") -> list[Record]:
    mocks = RecordingMocks("azure")
    monitor = RecordingMonitor(mocks)
    pulumi_settings.reset_options(project="mlops-blueprints", stack=stack, preview=False)
    pulumi_mocks.set_mocks(
        mocks, project="mlops-blueprints", stack=stack, preview=False, monitor=monitor
    )
    _sync_await(run_pulumi_func(build))
    return monitor.records


def of_type(records: list[Record], type_: str) -> list[Record]:
    return [r for r in records if r.type == type_]
