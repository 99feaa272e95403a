"""Argument checks shared by the on-prem components. A check collects every problem and
raises once, before the component creates its first child."""

from __future__ import annotations

import re
from typing import Any

from core.errors import problem, raise_problems

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUANTITY_CPU = re.compile(r"^\d+(\.\d+)?m?$")
QUANTITY_MEM = re.compile(r"^\d+(Ki|Mi|Gi|Ti)$")


class Checks:
    def __init__(self, component: str):
        self.component = component
        self.problems: list[str] = []

    def expect(self, ok: bool, field: str, value: Any, allowed: str, fix: str) -> None:
        """Record `field=value is not <allowed>; <fix>` unless `ok`."""
        if not ok:
            self.problems.append(problem(field, value, allowed, fix))

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
        raise_problems(self.component, self.problems)
