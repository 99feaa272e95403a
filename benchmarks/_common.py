"""Shared by the benchmark scripts: the machine description and the docs/performance.md writer.

Each script owns one section of docs/performance.md, between `<!-- bench:NAME -->` and
`<!-- /bench:NAME -->`; running it replaces that section only.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE_MD = ROOT / "docs" / "performance.md"
PACKAGES = (
    "mlflow",
    "scikit-learn",
    "pandas",
    "numpy",
    "uvicorn",
    "starlette",
    "fastapi",
    "aiohttp",
    "pulumi",
)


def machine() -> str:
    """One line: cores, memory, CPU model, OS, Python and the key package versions."""
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = f"load average {os.getloadavg()[0]:.1f}"
    except OSError:
        load = ""
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem} RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; {versions}; "
        f"{load} at the start (the machine is shared)"
    )


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section `name` of docs/performance.md."""
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    block = (
        f"<!-- bench:{name} -->\n## {title}\n\nMeasured {stamp} by "
        f"`python -m benchmarks.{name}`. Machine: {machine()}.\n\n{body.strip()}\n"
        f"<!-- /bench:{name} -->"
    )
    text = PERFORMANCE_MD.read_text() if PERFORMANCE_MD.is_file() else ""
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    PERFORMANCE_MD.write_text(text)
    print(block)
