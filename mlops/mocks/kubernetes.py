"""Offline-plan answers for the on-prem blueprint (see mlops/plan.py, RecordingMocks).

Generated credentials get a deterministic placeholder `result` and `bcryptHash`, so the
programs that derive values from them (the registry's htpasswd line) run under mocks.

A client stack's StackReference to its cluster stack (`kubernetes.clusterStack`) is answered
with that cluster stack's real outputs: its stack file is read and validated from the plan's
project, and the cluster blueprint's `declared_outputs` (what its program exports) computed.
A cluster stack that does not exist fails the plan with the stacks there are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks

from blueprints import cluster as cluster_blueprint
from core.config import PROJECT_ROOT, StackSettings, existing_stack_file, load_stack

_PASSWORD = "random:index/randomPassword:RandomPassword"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
_state: dict[str, Path] = {"root": PROJECT_ROOT}


def use_root(root: Path, settings: StackSettings) -> None:
    """The project whose stack files answer StackReferences (the plan's root). A client
    stack whose cluster stack has no stack file there fails here, before the program runs,
    with FileNotFoundError naming the key and the stacks there are."""
    _state["root"] = root
    stack = settings.kubernetes.cluster_stack
    if settings.blueprint == "onprem" and stack:
        try:
            existing_stack_file(stack.rsplit("/", 1)[-1], root)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"kubernetes.clusterStack={stack!r} of {settings.stack_name} names no cluster "
                f"stack: {exc}, or create the cluster stack with `mlops new "
                f"{settings.client} --blueprint cluster --env prod`"
            ) from exc


def cluster_outputs(stack: str, root: Path | None = None) -> dict[str, Any]:
    """The outputs the cluster stack `stack` (`name` or `org/project/name`) exports, or {}
    when it is a stack of another blueprint (the client then names what is missing)."""
    settings = load_stack(stack.rsplit("/", 1)[-1], root or _state["root"])
    if settings.blueprint != cluster_blueprint.NAME:
        return {"blueprint": settings.blueprint}
    return cluster_blueprint.declared_outputs(settings)


def outputs(args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]] | None:
    if args.typ == _PASSWORD:
        length = int(args.inputs.get("length", 16))
        return f"{args.name}-id", {
            **args.inputs,
            "result": "p" * length,
            "bcryptHash": "$2a$10$" + "h" * 53,
        }
    if args.typ == STACK_REFERENCE:
        name = str(args.inputs.get("name"))
        return name, {"name": name, "outputs": cluster_outputs(name), "secretOutputNames": []}
    return None
