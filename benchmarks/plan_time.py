"""Offline plan time: `mlops.plan.run_plan(stack)` for every example stack.

    .venv/bin/python -m benchmarks.plan_time [--repeats 3]

Stacks whose blueprint is not implemented yet are reported as such. Each stack is planned
once to warm up (imports, provider schemas) and then `--repeats` times.
"""

from __future__ import annotations

import argparse
import time

from benchmarks._common import write_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from core.config import list_stacks, load_stack
    from mlops.plan import run_plan

    rows = []
    for stack in list_stacks():
        settings = load_stack(stack)
        started = time.perf_counter()
        plan = run_plan(stack)
        first = time.perf_counter() - started
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            run_plan(stack)
            times.append(time.perf_counter() - started)
        rows.append(
            f"| {stack} | {settings.blueprint} | {len(plan.records)} | {first:.2f} | "
            f"{min(times):.2f} | {sorted(times)[len(times) // 2]:.2f} |"
        )
    body = (
        "| stack | blueprint | resources | first run (s) | best (s) | median (s) |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Warm runs: {args.repeats} per stack, in one process."
    )
    write_section("plan_time", "Offline plan time", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
