"""The errors every layer raises for bad input, and the one message form they use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ArgsError(ValueError):
    """Component arguments that cannot build a working resource; nothing was created. The
    message lists every problem with the field, the bad value, the allowed values and the fix."""


def problem(field: str, value: Any, allowed: str, fix: str) -> str:
    """The house message: `<field>=<value> is not <allowed>; <fix>`."""
    return f"{field}={value!r} is not {allowed}; {fix}"


def raise_problems(component: str, problems: Iterable[str]) -> None:
    """Raise one ArgsError listing every problem of a component's args (none: return)."""
    found = list(problems)
    if found:
        lines = "\n".join(f"  - {p}" for p in found)
        raise ArgsError(
            f"{component}: {len(found)} invalid argument(s); nothing was created:\n{lines}"
        )
