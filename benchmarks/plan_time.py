"""Plan time as fresh processes: every example stack's `mlops plan` against the provider import
floor, warm (compiled definitions current: a cache hit) and cold (a miss: every pipeline
definition compiled with its SDK), and `mlops plans`, in one run.

    .venv/bin/python -m benchmarks.plan_time [--repeats 3]

The floor is `python -c 'import pulumi, pulumi_aws, pulumi_azure_native, pulumi_kubernetes'`,
measured in the same round as each stack (the machine is shared, so every ratio pairs numbers
taken together). A cold plan runs with `MLOPS_COMPILE_CACHE=off`: the cost of a plan after a
change to the pipeline. Reports medians, the load average before and after, and the targets
of issue #19 (warm <= 3x floor, `mlops plans` <= 2x one stack's warm plan, cold a third faster
than the issue's numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import ROOT, write_section

FLOOR = [sys.executable, "-c", "import pulumi, pulumi_aws, pulumi_azure_native, pulumi_kubernetes"]
MLOPS = [str(Path(sys.executable).with_name("mlops"))]
PROVIDERS = ("pulumi_aws.", "pulumi_azure_native.", "pulumi_kubernetes.")
PROBE = (
    "import json, sys\n"
    "from mlops.plan import run_plan\n"
    "run_plan(sys.argv[1])\n"
    "print(json.dumps(sorted(m for m, mod in list(sys.modules.items())\n"
    "    if m.startswith({providers!r}) and type(mod).__name__ != '_LazyModule')))"
)
BEFORE = {"acme-dev": 12.3, "acme-prod": 14.7, "contoso-prod": 16.3, "globex-prod": 5.3}
"""Fresh-process `mlops plan` before the compile cache (issue #19, same machine)."""


def _time(argv: list[str], *, cache: bool = True) -> float:
    env = {**os.environ, "MLOPS_COMPILE_CACHE": "on" if cache else "off"}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def _stack_floor(stack: str) -> list[str]:
    """`python -c 'import pulumi, <each provider module the stack's plan loads>'`: what the
    stack cannot plan without (the resource classes it declares), measured like the floor. The
    providers list every submodule in sys.modules as a lazy stub; only the loaded ones count."""
    probe = PROBE.format(providers=PROVIDERS)
    done = subprocess.run(
        [sys.executable, "-c", probe, stack], cwd=ROOT, capture_output=True, text=True, check=True
    )
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    return [sys.executable, "-c", "import " + ", ".join(["pulumi", *modules])]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (5 min {five:.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stacks", nargs="*", help="Default: every example stack.")
    args = parser.parse_args(argv)
    from core.config import list_stacks

    stacks = args.stacks or list_stacks(ROOT)
    load_before = _load()
    _time(FLOOR)  # page the providers in once, like every later run
    rows, warm_medians, floors = [], {}, []
    for stack in stacks:
        floor, own, warm, cold = [], [], [], []
        own_floor = _stack_floor(stack)
        for _ in range(args.repeats):
            floor.append(_time(FLOOR))
            own.append(_time(own_floor))
            warm.append(_time([*MLOPS, "plan", stack, "--json"]))
            cold.append(_time([*MLOPS, "plan", stack, "--json"], cache=False))
        f, o, w, c = (statistics.median(x) for x in (floor, own, warm, cold))
        floors.append(f)
        warm_medians[stack] = w
        before = BEFORE.get(stack)
        gain = f"{c:.1f} s vs {before:.1f} s ({before / c:.2f}x)" if before else "-"
        rows.append(
            f"| {stack} | {f:.2f} | {o:.2f} | {w:.2f} | {w / f:.1f} | {w / o:.1f} | {c:.2f} "
            f"| {c / f:.1f} | {gain} |"
        )
        print(rows[-1], flush=True)
    plans, plan_floor = [], []
    for _ in range(args.repeats):
        plan_floor.append(_time(FLOOR))
        plans.append(_time([*MLOPS, "plans"]))
    p, pf = statistics.median(plans), statistics.median(plan_floor)
    slowest = max(warm_medians.values())
    body = (
        f"Load average {load_before} before the run, {_load()} after.\n\n"
        "| stack | floor (s) | stack's provider modules (s) | warm plan (s) | warm / floor "
        "| warm / provider modules | cold plan (s) | cold / floor | cold vs before the cache |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"`mlops plans` (all {len(list_stacks(ROOT))} example stacks, warm): {p:.2f} s, "
        f"floor {pf:.2f} s, "
        f"{p / slowest:.1f}x the slowest stack's warm plan ({slowest:.2f} s).\n\n"
        f"Medians of {args.repeats} fresh processes each; floor: `import pulumi, pulumi_aws, "
        "pulumi_azure_native, pulumi_kubernetes` (the issue's floor: the providers' packages, "
        "whose submodules load lazily); stack's provider modules: `import pulumi` and every "
        "provider submodule that stack's plan imports (the resource classes it declares, "
        "e.g. `pulumi_azure_native.network`), a floor no program declaring those resources "
        "goes under; warm: compiled definitions current "
        "(`compiled/`); cold: `MLOPS_COMPILE_CACHE=off` (every pipeline definition compiled "
        "with its SDK, as after a change to the pipeline). Targets: warm <= 3x floor, "
        "`mlops plans` <= 2x one stack's plan, cold at least a third faster than before the "
        "cache (issue #19: acme-dev 12.3 s, acme-prod 14.7 s, contoso-prod 16.3 s, "
        "globex-prod 5.3 s)."
    )
    write_section("plan_time", "Plan time (fresh processes)", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
