"""The catalog of models in production: per stack, what serves on each endpoint and why.

    entries = build_catalog(CatalogSources(azure_subscription="..."))

For every stack (the `Pulumi.<client>-<env>.yaml` files, examples and users' alike) and for
this machine's loop (`local`), read from the platform's own registry:

- sagemaker: DescribeEndpoint -> endpoint config -> model -> model package (boto3); lineage
  and metrics from the package's customer metadata; drift from the stack's CloudWatch drift
  alarms (ALARM = drift);
- azureml: online endpoint traffic -> deployments -> models (azure-ai-ml); lineage, metrics
  and drift (`drift_status`) from the model version's tags;
- onprem: the InferenceService pins `mlops:model` (the cluster is not read); lineage, metrics
  and drift from the MLflow version's tags;
- local: the local endpoint's traffic, else the last release; the sqlite MLflow registry; the
  last `mlops monitor` check.

Lineage is the data hash, code version and metrics; the last release comes from the release
records under `.mlops/releases/` (`mlops release`) and `<workdir>/releases/releases.jsonl`
(the local loop), read defensively: any JSON object with a `stack` (or, locally, every
record). A registry that cannot be reached gives an entry with the error, never a crash, so
one unreachable platform does not hide the others.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from components.azure._common import dashed_name
from core.config import ConfigError, list_stacks, load_stack
from core.contract import CLUSTER_BLUEPRINT
from core.names import StackNames
from pipelines.definition import PipelineSettings, pipeline_settings_from_stack
from pipelines.local import default_tracking_uri
from pipelines.loop.monitor import checks
from pipelines.serving.endpoint import find_endpoint

LINEAGE_KEYS = ("data_hash", "code_version", "pipeline_run_id", "model_hash", "approval_status")
RELEASE_TIME_KEYS = ("finished", "time", "started", "timestamp", "created")


@dataclass
class CatalogEntry:
    """One endpoint of one stack and the model version(s) serving on it."""

    stack: str
    blueprint: str
    environment: str
    endpoint: str
    model_name: str
    version: str = ""
    """The version taking the most traffic ('' when nothing is deployed or it is unknown)."""
    traffic: dict[str, int] = field(default_factory=dict)
    """Version -> share of traffic in percent."""
    pinned: str = ""
    """`mlops:model` in the stack config: what the next `pulumi up` serves."""
    lineage: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    exportable: str = ""
    """ONNX edge export: 'true', 'false' (see lineage.onnx_reason) or '' (not recorded)."""
    last_release: dict[str, Any] | None = None
    drift: dict[str, Any] = field(default_factory=lambda: {"status": "unknown"})
    source: str = ""
    status: str = "serving"
    """serving, not-deployed, no-model or error."""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CatalogSources:
    """Where the catalog reads each platform; defaults are the real clients."""

    root: Path = Path(".")
    """Folder holding the Pulumi.<stack>.yaml files."""
    stacks: tuple[str, ...] = ()
    """Stacks to list; empty = every stack file under root."""
    releases_dir: Path = Path(".mlops/releases")
    local_workdir: Path | None = Path(".mlops/local")
    """The local loop's folder; None leaves `local` out."""
    tracking_uris: dict[str, str] = field(default_factory=dict)
    """Stack -> MLflow URI (on-prem default: https://mlflow.<kubernetes.ingressDomain>)."""
    azure_subscription: str | None = None
    azure_credential: Any = None
    sagemaker_client: Callable[[str], Any] | None = None
    """region -> boto3 SageMaker client (default boto3.client)."""
    cloudwatch_client: Callable[[str], Any] | None = None


# ---------------------------------------------------------------- releases


def _records(path: Path) -> Iterable[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    if path.suffix == ".jsonl":
        out = []
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                out.append(item)
        return out
    try:
        item = json.loads(text)
    except ValueError:
        return []
    if isinstance(item, list):
        return [i for i in item if isinstance(i, dict)]
    return [item] if isinstance(item, dict) else []


def _when(record: dict[str, Any]) -> str:
    return next((str(record[k]) for k in RELEASE_TIME_KEYS if record.get(k)), "")


def last_release(paths: Iterable[Path], stack: str | None) -> dict[str, Any] | None:
    """The latest release record for `stack` (None: every record) in these files or folders."""
    found: list[tuple[str, int, dict[str, Any]]] = []
    n = 0
    for base in paths:
        files = sorted(base.rglob("*.json*")) if base.is_dir() else [base] if base.is_file() else []
        for file in files:
            for record in _records(file):
                if stack is not None and record.get("stack") != stack:
                    continue
                n += 1
                found.append((_when(record), n, record))
    if not found:
        return None
    record = max(found, key=lambda item: (item[0], item[1]))[2]
    keep = ("version", "outcome", "status", "strategy", "reason", "previous", "stack")
    summary = {k: record[k] for k in keep if k in record}
    summary["time"] = _when(record)
    return summary


# ---------------------------------------------------------------- platforms


def _facts(tags: dict[str, str]) -> tuple[dict[str, str], dict[str, float], str]:
    lineage = {k: str(tags[k]) for k in (*LINEAGE_KEYS, "onnx_reason") if tags.get(k)}
    metrics = {}
    for key, value in tags.items():
        if key.startswith("metric."):
            try:
                metrics[key.removeprefix("metric.")] = float(value)
            except ValueError:
                continue
    return lineage, metrics, str(tags.get("onnx_exportable", ""))


def _top(traffic: dict[str, int]) -> str:
    return max(traffic.items(), key=lambda kv: (kv[1], kv[0]))[0] if traffic else ""


def sagemaker_entry(entry: CatalogEntry, settings: Any, sources: CatalogSources) -> None:
    import boto3
    from botocore.exceptions import ClientError

    region = settings.region
    sm = (sources.sagemaker_client or (lambda r: boto3.client("sagemaker", region_name=r)))(region)
    entry.source = f"sagemaker {region}"
    try:
        endpoint = sm.describe_endpoint(EndpointName=entry.endpoint)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            entry.status = "not-deployed"
            return
        raise
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    current = {v["VariantName"]: v for v in endpoint.get("ProductionVariants", [])}
    weights, tags_by_version = {}, {}
    for variant in config.get("ProductionVariants", []):
        model = sm.describe_model(ModelName=variant["ModelName"])
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        package_arn = container.get("ModelPackageName")
        if not package_arn:
            continue
        package = sm.describe_model_package(ModelPackageName=package_arn)
        version = str(package.get("ModelPackageVersion", package_arn.rsplit("/", 1)[-1]))
        live = current.get(variant["VariantName"], {})
        weights[version] = float(live.get("CurrentWeight", variant.get("InitialVariantWeight", 1)))
        tags = dict(package.get("CustomerMetadataProperties") or {})
        tags.setdefault("approval_status", str(package.get("ModelApprovalStatus", "")).lower())
        tags_by_version[version] = tags
    total = sum(weights.values()) or 1.0
    entry.traffic = {v: round(100 * w / total) for v, w in weights.items()}
    entry.version = _top(entry.traffic)
    if entry.version:
        entry.lineage, entry.metrics, entry.exportable = _facts(tags_by_version[entry.version])
    else:
        entry.status = "no-model"

    names = StackNames(settings.prefix)
    alarms = [f"{names.monitoring_schedule}-drift", f"{names.data_drift_rule}-alarm"]
    cw = (sources.cloudwatch_client or (lambda r: boto3.client("cloudwatch", region_name=r)))(
        region
    )
    states = {
        a["AlarmName"]: a["StateValue"]
        for a in cw.describe_alarms(AlarmNames=alarms)["MetricAlarms"]
    }
    if not states:
        entry.drift = {"status": "unknown", "detail": "no drift alarm found"}
    elif "ALARM" in states.values():
        firing = sorted(a for a, s in states.items() if s == "ALARM")
        entry.drift = {"status": "drift", "detail": "alarm " + ", ".join(firing)}
    else:
        entry.drift = {"status": "ok", "detail": ", ".join(f"{a} {s}" for a, s in states.items())}


def _azure_version(model_ref: str) -> tuple[str, str]:
    """(name, version) from 'azureml:name:3' or an ARM id '.../models/name/versions/3'."""
    ref = model_ref.removeprefix("azureml:")
    if "/versions/" in ref:
        head, version = ref.rsplit("/versions/", 1)
        return head.rsplit("/", 1)[-1], version
    name, _, version = ref.rpartition(":")
    return name, version


def azure_entry(entry: CatalogEntry, settings: Any, sources: CatalogSources) -> None:
    from azure.ai.ml import MLClient
    from azure.core.exceptions import ResourceNotFoundError

    if not sources.azure_subscription:
        raise RuntimeError(
            "no Azure subscription id; set AZURE_SUBSCRIPTION_ID or pass --azure-subscription"
        )
    credential = sources.azure_credential
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    group, workspace = f"rg-{settings.prefix}", f"mlw-{settings.prefix}"
    ml = MLClient(credential, sources.azure_subscription, group, workspace)
    entry.source = f"azureml {workspace}"
    try:
        endpoint = ml.online_endpoints.get(entry.endpoint)
    except ResourceNotFoundError:
        entry.status = "not-deployed"
        return
    traffic = {k: int(v) for k, v in (endpoint.traffic or {}).items()}
    by_deployment = {d.name: d for d in ml.online_deployments.list(entry.endpoint)}
    tags_by_version: dict[str, dict[str, str]] = {}
    for name, percent in traffic.items():
        deployment = by_deployment.get(name)
        if deployment is None or not deployment.model:
            continue
        model_name, version = _azure_version(str(deployment.model))
        model = ml.models.get(model_name, version=version)
        tags_by_version[version] = {**(model.properties or {}), **(model.tags or {})}
        entry.traffic[version] = entry.traffic.get(version, 0) + percent
    entry.version = _top({v: p for v, p in entry.traffic.items() if p > 0})
    if not entry.version:
        entry.status = "no-model"
        return
    tags = tags_by_version[entry.version]
    entry.lineage, entry.metrics, entry.exportable = _facts(tags)
    entry.drift = _drift_tag(tags)


def _drift_tag(tags: dict[str, str]) -> dict[str, Any]:
    status = tags.get("drift_status")
    if status in ("ok", "drift"):
        return {"status": status, "detail": tags.get("drift_detail", "from the version's tag")}
    return {"status": "unknown", "detail": "no drift check recorded on the version"}


def _mlflow_tags(tracking_uri: str, model_name: str, version: str) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    return dict(client.get_model_version(model_name, version).tags)


def onprem_entry(entry: CatalogEntry, settings: Any, sources: CatalogSources) -> None:
    uri = sources.tracking_uris.get(
        entry.stack, f"https://mlflow.{settings.kubernetes.ingress_domain}"
    )
    entry.source = f"mlflow {uri}"
    if not settings.model:
        entry.status = "not-deployed"
        return
    previous = getattr(settings.rollout, "previous_model", None)
    entry.traffic = {settings.model: 100}
    if previous and previous != settings.model:
        step = settings.rollout.traffic_step_percent
        entry.traffic = {settings.model: step, previous: 100 - step}
    entry.version = settings.model
    tags = _mlflow_tags(uri, entry.model_name, entry.version)
    entry.lineage, entry.metrics, entry.exportable = _facts(tags)
    entry.drift = _drift_tag(tags)


def local_entry(entry: CatalogEntry, workdir: Path) -> None:
    uri = default_tracking_uri(workdir)
    entry.source = f"mlflow {uri}"
    entry.last_release = last_release([workdir / "releases"], None)
    try:
        running = find_endpoint(workdir)
        state = running.state() if running is not None else None
    except Exception:  # noqa: BLE001 - a stale endpoint file reads as not running
        state = None
    if state:
        entry.endpoint = running.url
        weights = {v: float(i.get("weight", 0)) for v, i in state.get("versions", {}).items()}
        total = sum(weights.values()) or 1.0
        entry.traffic = {v: round(100 * w / total) for v, w in weights.items() if w > 0}
    elif entry.last_release and entry.last_release.get("outcome") == "released":
        entry.endpoint = "(stopped)"
        entry.traffic = {str(entry.last_release["version"]): 100}
    entry.version = _top(entry.traffic)
    if not entry.version:
        entry.status = "not-deployed"
        return
    tags = _mlflow_tags(uri, entry.model_name, entry.version)
    entry.lineage, entry.metrics, entry.exportable = _facts(tags)

    done = checks(workdir)
    if done:
        last = done[-1]
        entry.drift = {
            "status": last.get("status", "unknown"),
            "detail": f"check {last.get('time', '')}: drifted "
            + (", ".join(last.get("drifted", [])) or "none"),
        }
    else:
        entry.drift = {"status": "unknown", "detail": "no monitoring check yet"}


# ---------------------------------------------------------------- the catalog


def _endpoint_name(settings: Any) -> str:
    if settings.blueprint == "sagemaker":
        return StackNames(settings.prefix).endpoint
    if settings.blueprint == "azureml":
        return dashed_name("ep", settings.prefix, settings.region, 32)
    return f"{settings.prefix}-model"


READERS: dict[str, Callable[[CatalogEntry, Any, CatalogSources], None]] = {
    "sagemaker": sagemaker_entry,
    "azureml": azure_entry,
    "onprem": onprem_entry,
}


def build_catalog(sources: CatalogSources) -> list[CatalogEntry]:
    """Every stack's endpoint(s), then `local`; errors are kept per entry."""
    entries: list[CatalogEntry] = []
    for stack in sources.stacks or tuple(list_stacks(sources.root)):
        try:
            settings = load_stack(stack, sources.root)
        except (ConfigError, FileNotFoundError) as exc:
            entries.append(CatalogEntry(stack, "?", "?", "", "", status="error", error=str(exc)))
            continue
        if settings.blueprint == CLUSTER_BLUEPRINT:
            continue  # the shared layer of a cluster serves no endpoint of its own
        entry = CatalogEntry(
            stack,
            settings.blueprint,
            settings.environment,
            _endpoint_name(settings),
            pipeline_settings_from_stack(settings).registered_model_name,
            pinned=settings.model or "",
            last_release=last_release([sources.releases_dir], stack),
        )
        try:
            READERS[settings.blueprint](entry, settings, sources)
        except Exception as exc:  # noqa: BLE001 - one platform's failure is shown, not fatal
            entry.status, entry.error = "error", f"{type(exc).__name__}: {exc}"
        entries.append(entry)
    if sources.local_workdir is not None and (sources.local_workdir / "mlflow").is_dir():
        entry = CatalogEntry(
            "local", "local", "dev", "", PipelineSettings(client="local").registered_model_name
        )
        try:
            local_entry(entry, sources.local_workdir)
        except Exception as exc:  # noqa: BLE001
            entry.status, entry.error = "error", f"{type(exc).__name__}: {exc}"
        entries.append(entry)
    return entries


def to_json(entries: list[CatalogEntry]) -> str:
    return json.dumps([e.to_dict() for e in entries], indent=2, sort_keys=True, default=str)


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;font-size:.9rem}"
    ".drift{color:#b00;font-weight:bold}.ok{color:#070}.error{color:#b00}code{font-size:.8rem}"
)


def to_html(entries: list[CatalogEntry]) -> str:
    """A self-contained HTML page: one row per endpoint."""

    def esc(value: Any) -> str:
        return html.escape(str(value))

    head = (
        "stack",
        "blueprint",
        "endpoint",
        "model",
        "serving",
        "traffic",
        "lineage",
        "metrics",
        "edge",
        "last release",
        "drift",
    )
    rows = []
    for e in entries:
        release = e.last_release or {}
        drift = e.drift.get("status", "unknown")
        serving = e.version or e.status
        if e.error:
            serving = f"<span class='error'>{esc(e.error)}</span>"
        else:
            serving = esc(serving) + (f" (pinned {esc(e.pinned)})" if e.pinned else "")
        cells = [
            esc(e.stack),
            esc(f"{e.blueprint} / {e.environment}"),
            esc(e.endpoint),
            esc(e.model_name),
            serving,
            esc(", ".join(f"v{v}: {p}%" for v, p in e.traffic.items())),
            "<br>".join(f"{esc(k)}: <code>{esc(v)}</code>" for k, v in e.lineage.items()),
            "<br>".join(f"{esc(k)} {v:.4f}" for k, v in e.metrics.items()),
            esc({"true": "ONNX", "false": "not exportable"}.get(e.exportable, "")),
            esc(" ".join(str(release.get(k, "")) for k in ("version", "outcome", "time"))),
            f"<span class='{esc(drift)}'>{esc(drift)}</span> {esc(e.drift.get('detail', ''))}",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Models in production</title>"
        f"<style>{_CSS}</style></head><body><h1>Models in production</h1><table><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(rows)
        + "</table></body></html>\n"
    )
