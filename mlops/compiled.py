"""The committed compiled pipeline definitions (`compiled/`): refresh and staleness check.

    mlops compile            # write every example stack's artifacts, remove unused ones
    mlops compile --check    # exit 1 when one is stale, missing or unused

Each example stack is planned offline; every pipeline definition it compiles goes through
`pipelines.compilers.cache.compiled`, which hits the artifact or (here, when writing) compiles
a template, checks it against a fresh compile and writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.config import PROJECT_ROOT, list_stacks
from mlops.plan import run_plan
from pipelines.compilers import cache


@dataclass
class CompileReport:
    stale: list[str] = field(default_factory=list)
    """`<stack>: <artifact>` for every lookup that missed."""
    unused: list[str] = field(default_factory=list)
    """Artifacts no example stack uses."""
    used: set[Path] = field(default_factory=set)


def compile_all(root: Path = PROJECT_ROOT, *, check: bool = False) -> CompileReport:
    """Plan every example stack; write (or, with `check`, only verify) its artifacts."""
    report = CompileReport()
    directory = cache.compiled_dir()
    for stack in list_stacks(root):
        with cache.recording() as calls:
            if check:
                run_plan(stack, root=root)
            else:
                with cache.writing() as used:
                    run_plan(stack, root=root)
                report.used |= used
        for call in calls:
            report.used.add(call.artifact)
            if not call.hit:
                report.stale.append(f"{stack}: {call.artifact.name}")
    existing = set(directory.glob("*.json")) if directory.is_dir() else set()
    for path in sorted(existing - report.used):
        report.unused.append(path.name)
        if not check:
            path.unlink()
    return report
