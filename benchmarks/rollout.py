"""Rollout: failed requests during a release under sustained load.

    .venv/bin/python -m benchmarks.rollout [--releases 3] [--concurrency 4]

Two versions are registered by the local pipeline (the example data, then a synthetic batch);
version 1 is released, load starts (`--concurrency` clients, no pause) and the script releases
2, 1, 2, ... with a canary plan (25 %, 2 s bake per step), counting every request that did not
get a 200 while each release ran.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks._common import write_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--releases", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    from pipelines.data import LABEL, breast_cancer, synthetic
    from pipelines.definition import PipelineSettings
    from pipelines.local import run_local
    from pipelines.loop.traffic import Traffic
    from pipelines.release.local import RolloutPlan, release_local
    from pipelines.serving.endpoint import start_endpoint

    tmp = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    settings = PipelineSettings(client="bench")
    run_local(settings, workdir=tmp, progress=False)
    batch = tmp / "batch2.csv"
    synthetic(600, seed=11).to_csv(batch, index=False)
    empty = tmp / "no-baseline"
    empty.mkdir()
    second = run_local(settings, workdir=tmp, data=batch, baseline=empty, progress=False)
    assert second.registered_version == 2, second.reason
    name, uri = settings.registered_model_name, second.tracking_uri
    endpoint = start_endpoint(tmp, port=0)
    rows = []
    try:
        release_local(
            workdir=tmp, tracking_uri=uri, model_name=name, version="1", endpoint=endpoint
        )
        plan = RolloutPlan(strategy="canary", step_percent=25, bake_seconds=2.0)
        with Traffic(
            endpoint.url, breast_cancer().drop(columns=LABEL), concurrency=args.concurrency, batch=4
        ) as traffic:
            traffic.wait_for(200)
            for i in range(args.releases):
                version = "2" if i % 2 == 0 else "1"
                sent, failed = traffic.stats.sent, traffic.stats.failed
                started = time.perf_counter()
                record = release_local(
                    workdir=tmp,
                    tracking_uri=uri,
                    model_name=name,
                    version=version,
                    endpoint=endpoint,
                    plan=plan,
                )
                seconds = time.perf_counter() - started
                during = traffic.stats.sent - sent
                lost = traffic.stats.failed - failed
                print(f"release {version}: {record.outcome}, {lost} failed of {during}")
                rows.append(
                    f"| {i + 1} | {', '.join(record.serving_before)} -> {version} | "
                    f"{record.outcome} | {seconds:.1f} | {during} | {lost} |"
                )
            total_failed = traffic.stats.failed
    finally:
        endpoint.stop()
    body = (
        f"Load: {args.concurrency} concurrent clients without pause, 4 rows per request, "
        "payload forms rotating (JSON split/records/instances/inputs, CSV). Plan: canary "
        "25 % then 100 %, 2 s bake per step, drain of the old version before it stops.\n\n"
        "| release | versions | outcome | seconds | requests during release | failed |\n"
        "|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nFailed requests over the whole run (including between releases): "
        f"{total_failed}."
    )
    write_section("rollout", "Failed requests during a rollout", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
