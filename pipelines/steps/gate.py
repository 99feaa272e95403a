"""quality-gate: pass when the metric clears the absolute minimum and is no worse than the
current champion by more than the allowed margin.

    python -m pipelines.steps.gate --evaluation DIR --gate-dir DIR --gate-metric roc_auc \
        --gate-minimum 0.9 --gate-max-regression 0.01 [--champion-metric 0.97]

A negative --champion-metric means there is no champion yet. Writes gate.json with "passed"
(true/false) and "passed_int" (1/0, for SageMaker's condition step) and always exits 0: the
decision is data, acted on by the register step (or the platform's condition).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from pipelines.steps._common import StepError, read_json, write_json


def decide(
    metrics: dict[str, float],
    *,
    metric: str,
    minimum: float,
    max_regression: float,
    champion: float | None,
) -> dict[str, Any]:
    if metric not in metrics:
        raise StepError(
            f"gate metric {metric!r} is not in evaluation.json "
            f"(has {sorted(metrics)}); set gate.metric to one of them"
        )
    value = float(metrics[metric])
    reasons: list[str] = []
    if math.isnan(value) or value < minimum:
        reasons.append(f"{metric} {value:.4f} is below the minimum {minimum:.4f}")
    floor = None
    if champion is not None:
        floor = champion - max_regression
        if value < floor:
            reasons.append(
                f"{metric} {value:.4f} is worse than the champion's {champion:.4f} "
                f"by more than {max_regression:.4f}"
            )
    passed = not reasons
    return {
        "passed": passed,
        "passed_int": int(passed),
        "metric": metric,
        "value": value,
        "minimum": minimum,
        "max_regression": max_regression,
        "champion": champion,
        "champion_floor": floor,
        "reasons": reasons or ["all gate rules pass"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.steps.gate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--evaluation", type=Path, required=True)
    parser.add_argument("--gate-dir", type=Path, required=True)
    parser.add_argument("--gate-metric", default="roc_auc")
    parser.add_argument("--gate-minimum", type=float, default=0.9)
    parser.add_argument("--gate-max-regression", type=float, default=0.01)
    parser.add_argument("--champion-metric", type=float, default=-1.0)
    args = parser.parse_args(argv)
    try:
        evaluation = read_json(args.evaluation / "evaluation.json")
        decision = decide(
            evaluation["metrics"],
            metric=args.gate_metric,
            minimum=args.gate_minimum,
            max_regression=args.gate_max_regression,
            champion=args.champion_metric if args.champion_metric >= 0 else None,
        )
    except StepError as exc:
        print(f"quality-gate: {exc}", file=sys.stderr)
        return 2
    write_json(args.gate_dir / "gate.json", decision)
    # a bare true/false for Argo's `when` (read as an output parameter)
    (args.gate_dir / "passed").write_text("true" if decision["passed"] else "false")
    verdict = "passed" if decision["passed"] else "failed"
    print(f"quality-gate {verdict}: " + "; ".join(decision["reasons"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
