"""Offline-plan answers for the on-prem blueprint (see mlops/plan.py, RecordingMocks).

Generated credentials get a deterministic placeholder `result` and `bcryptHash`, so the
programs that derive values from them (the registry's htpasswd line) run under mocks."""

from __future__ import annotations

from typing import Any

from pulumi.runtime import mocks as pulumi_mocks

_PASSWORD = "random:index/randomPassword:RandomPassword"


def outputs(args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]] | None:
    if args.typ == _PASSWORD:
        length = int(args.inputs.get("length", 16))
        return f"{args.name}-id", {
            **args.inputs,
            "result": "p" * length,
            "bcryptHash": "$2a$10$" + "h" * 53,
        }
    return None
