"""register: put the model into an MLflow registry with its lineage and approval status.

    python -m pipelines.steps.register --model DIR --evaluation DIR --gate DIR --report DIR \
        --baseline DIR --registration-dir DIR --model-name NAME --approval-status approved \
        [--tracking-uri URI] [--artifact-root URI] [--pipeline-run-id ID]

The tracking URI defaults to $MLFLOW_TRACKING_URI (set by Azure ML jobs and by the Argo
template); the run id to $MLOPS_PIPELINE_RUN_ID. Nothing is registered when the gate failed:
registration.json then says why. A model folder registered before (same content hash) is not
registered twice; its existing version is reported.

Lineage tags on the version: data_hash, code_version, environment fingerprint, pipeline_run_id,
model_hash, approval_status, training_rows and training_sampled (true when the trainer was fit
on a sample of a train split larger than training.maxRows); parameters (among them
train_rows, train_rows_available, train_max_rows) and metrics are on the version's MLflow run.
Approval: 'approved' sets the tag and moves the 'champion' alias to the version; 'pending'
leaves the alias where it is until someone approves.

Edge export (`--export-onnx 1`, the default): the model is exported to ONNX and its
probabilities are compared with the original's on the evaluation split (`--test`); the
outcome (max |difference|, `--onnx-tolerance`, reason) is in lineage.json and the version's
`onnx_*` tags, the graph is logged under `onnx/` when parity passed. A version that fails is
still registered, tagged `onnx_exportable=false` with the reason. The evaluation's feature
importance is tagged on the version too (`feature_importance`, top 10).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from pipelines.steps._common import (
    DEFAULT_CHUNK_ROWS,
    StepError,
    hash_path,
    read_json,
    split_file,
    write_json,
)
from pipelines.steps._mlflow_db import seed_sqlite_store
from pipelines.steps.onnx_parity import ExportResult, export_model

APPROVALS = ("approved", "pending")
CHAMPION_ALIAS = "champion"


def lineage(
    model: Path, evaluation: Path, gate: Path, report: Path, pipeline_run_id: str
) -> dict[str, Any]:
    training = read_json(model / "training.json")
    env = training.get("environment", {})
    return {
        "data_hash": read_json(report / "report.json")["data_hash"],
        "code_version": training.get("code_version", "unknown"),
        "environment_fingerprint": env.get("hash", "unknown"),
        "environment": env,
        "pipeline_run_id": pipeline_run_id,
        "model_hash": hash_path(model),
        "training_rows": training.get("rows"),
        "training_sample": {
            "rows_available": training.get("rows_available", training.get("rows")),
            **training.get("sample", {"sampled": False}),
        },
        "parameters": {
            "trainer": training.get("trainer"),
            "seed": training.get("seed"),
            "train_rows": training.get("rows"),
            "train_rows_available": training.get("rows_available", training.get("rows")),
            "train_max_rows": training.get("sample", {}).get("max_rows"),
            **{f"hp_{k}": v for k, v in training.get("hyperparameters", {}).items()},
            **{
                f"gate_{k}": read_json(gate / "gate.json").get(k)
                for k in ("metric", "minimum", "max_regression", "champion")
            },
        },
        "metrics": read_json(evaluation / "evaluation.json")["metrics"],
    }


def _experiment(client: Any, name: str, artifact_root: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
    return client.create_experiment(name, artifact_location=location)


def register(
    *,
    model: Path,
    evaluation: Path,
    gate: Path,
    report: Path,
    baseline: Path | None,
    model_name: str,
    approval_status: str,
    tracking_uri: str,
    artifact_root: str | None,
    pipeline_run_id: str,
    test: Path | None = None,
    export_onnx: bool = True,
    onnx_tolerance: float = 1e-4,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> dict[str, Any]:
    decision = read_json(gate / "gate.json")
    if not decision.get("passed"):
        return {
            "registered": False,
            "reason": "quality gate failed: " + "; ".join(decision.get("reasons", [])),
            "model_name": model_name,
        }
    if approval_status not in APPROVALS:
        raise StepError(
            f"--approval-status {approval_status!r} is not one of "
            f"{', '.join(APPROVALS)}; it comes from approval.mode (auto/manual)"
        )
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    facts = lineage(model, evaluation, gate, report, pipeline_run_id)
    seed_sqlite_store(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(model_name, description="Registered by the mlops pipeline")
    existing = client.search_model_versions(
        f"name = '{model_name}' and tag.model_hash = '{facts['model_hash']}'"
    )
    if existing:
        version = existing[0]
        return {
            "registered": True,
            "reused": True,
            "model_name": model_name,
            "version": int(version.version),
            "run_id": version.run_id,
            "approval_status": version.tags.get("approval_status"),
            "lineage": facts,
        }

    import tempfile

    export_dir = Path(tempfile.mkdtemp(prefix="onnx-"))
    facts["export"] = _export(model, test, export_dir, export_onnx, onnx_tolerance, chunk_rows)
    importance = read_json(evaluation / "evaluation.json").get("feature_importance") or {}
    facts["feature_importance"] = importance
    experiment_id = _experiment(client, model_name, artifact_root)
    run = client.create_run(
        experiment_id,
        run_name=f"register-{pipeline_run_id}",
        tags={"mlops.pipeline_run_id": pipeline_run_id},
    )
    run_id = run.info.run_id
    for key, value in facts["parameters"].items():
        client.log_param(run_id, key, "" if value is None else value)
    for key, value in facts["metrics"].items():
        client.log_metric(run_id, key, float(value))
    for key in ("data_hash", "code_version", "environment_fingerprint", "model_hash"):
        client.set_tag(run_id, key, facts[key])
    client.log_artifacts(run_id, str(model), "model")
    client.log_artifacts(run_id, str(evaluation), "evaluation")
    if baseline is not None and (baseline / "baseline.json").is_file():
        client.log_artifact(run_id, str(baseline / "baseline.json"), "baseline")
    client.log_dict(run_id, facts, "lineage.json")
    client.log_artifacts(run_id, str(export_dir), "onnx")
    shutil.rmtree(export_dir, ignore_errors=True)
    client.set_terminated(run_id)

    source = f"{run.info.artifact_uri.rstrip('/')}/model"
    tags = {
        key: str(facts[key])
        for key in (
            "data_hash",
            "code_version",
            "environment_fingerprint",
            "pipeline_run_id",
            "model_hash",
        )
    }
    tags["approval_status"] = approval_status
    tags["training_rows"] = str(facts["training_rows"])
    tags["training_sampled"] = str(bool(facts["training_sample"].get("sampled"))).lower()
    tags.update(facts["export"]["tags"])
    if importance.get("features"):
        top = {f["feature"]: f["importance_mean"] for f in importance["features"][:10]}
        tags["feature_importance"] = json.dumps(top)
    tags.update({f"metric.{k}": f"{v:.6f}" for k, v in facts["metrics"].items()})
    version = client.create_model_version(
        model_name, source, run_id=run_id, tags=tags, description=f"pipeline run {pipeline_run_id}"
    )
    if approval_status == "approved":
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version.version)
    return {
        "registered": True,
        "reused": False,
        "model_name": model_name,
        "version": int(version.version),
        "run_id": run_id,
        "source": source,
        "approval_status": approval_status,
        "lineage": facts,
    }


def _export(
    model: Path,
    test: Path | None,
    out: Path,
    enabled: bool,
    tolerance: float,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> dict[str, Any]:
    """ONNX export and parity of `model` into `out`; never raises (the version registers)."""
    if not enabled:
        result = ExportResult(False, "export.onnx is off for this stack", tolerance)
    elif test is None or split_file(test) is None:
        result = ExportResult(
            False,
            "no evaluation split to check ONNX parity on; pass prepare's test folder as --test",
            tolerance,
        )
    else:
        result = export_model(model, test, out, tolerance=tolerance, chunk_rows=chunk_rows)
    write_json(out / "export.json", result.to_dict())
    return {**result.to_dict(), "tags": result.tags()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pipelines.steps.register",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--evaluation", type=Path, required=True)
    parser.add_argument("--gate", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--test", type=Path, default=None)
    parser.add_argument("--export-onnx", type=int, default=1, choices=(0, 1))
    parser.add_argument("--onnx-tolerance", type=float, default=1e-4)
    parser.add_argument(
        "--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows checked at a time"
    )
    parser.add_argument("--registration-dir", type=Path, required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--approval-status", default="pending")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", ""))
    parser.add_argument("--artifact-root", default=None)
    parser.add_argument(
        "--pipeline-run-id", default=os.environ.get("MLOPS_PIPELINE_RUN_ID") or uuid.uuid4().hex
    )
    args = parser.parse_args(argv)
    try:
        if not args.tracking_uri:
            raise StepError(
                "no MLflow tracking URI; pass --tracking-uri or set MLFLOW_TRACKING_URI"
            )
        result = register(
            model=args.model,
            evaluation=args.evaluation,
            gate=args.gate,
            report=args.report,
            baseline=args.baseline,
            model_name=args.model_name,
            approval_status=args.approval_status,
            tracking_uri=args.tracking_uri,
            artifact_root=args.artifact_root,
            pipeline_run_id=args.pipeline_run_id,
            test=args.test,
            export_onnx=bool(args.export_onnx),
            onnx_tolerance=args.onnx_tolerance,
            chunk_rows=args.chunk_rows,
        )
    except StepError as exc:
        print(f"register: {exc}", file=sys.stderr)
        return 2
    write_json(args.registration_dir / "registration.json", result)
    if result["registered"]:
        how = "already registered as" if result["reused"] else "registered"
        print(
            f"register: {how} {result['model_name']} version {result['version']} "
            f"({result['approval_status']})"
        )
    else:
        print(f"register: nothing registered, {result['reason']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
