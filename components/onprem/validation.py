"""Argument checks shared by the on-prem components. A check collects every problem and
raises once, before the component creates its first child."""

from __future__ import annotations

import re
from typing import Any

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUANTITY_CPU = re.compile(r"^\d+(\.\d+)?m?$")
QUANTITY_MEM = re.compile(r"^\d+(Ki|Mi|Gi|Ti)$")
CRON = re.compile(r"^(\S+\s+){4}\S+$")


class ArgsError(ValueError):
    """Invalid component arguments; the message lists every problem with its fix."""


class Checks:
    def __init__(self, component: str):
        self.component = component
        self.problems: list[str] = []

    def expect(self, ok: bool, field: str, value: Any, allowed: str, fix: str) -> None:
        """Record `field=value is not <allowed>; <fix>` unless `ok`."""
        if not ok:
            self.problems.append(f"{field}={value!r} is not {allowed}; {fix}")

    def dns_label(self, field: str, value: Any, fix: str, *, max_len: int = 63) -> None:
        ok = isinstance(value, str) and bool(DNS_LABEL.match(value)) and len(value) <= max_len
        self.expect(
            ok,
            field,
            value,
            f"a DNS label (lowercase letters, digits and '-', at most {max_len} chars)",
            fix,
        )

    def done(self) -> None:
        if self.problems:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            raise ArgsError(
                f"{self.component}: {len(self.problems)} invalid argument(s); "
                f"nothing was created:\n{lines}"
            )
