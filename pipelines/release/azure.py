"""Release and promotion on Azure ML, with the real `azure-ai-ml` client.

The CI release workflow (started by the release trigger's forwarder) uses these helpers around
`pulumi up`: resolve which registered version to pin, create or update a deployment for it,
move traffic in steps, roll back to the stable deployment when a rollback alarm fires, and
smoke-test the endpoint. Every traffic map written sums to 100 and names only deployments that
exist, the same rule the `AZ-EP-03` control checks in the stack.

Pulumi owns the endpoint: a traffic change made here during a bake (a step or a rollback) is
temporary; the workflow then pins `mlops:model` and runs `pulumi up`, which writes the final map.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.ai.ml import MLClient
from azure.ai.ml.entities import ManagedOnlineDeployment, Model, OnlineEndpoint


class ReleaseError(RuntimeError):
    """A release step that cannot proceed; the message says why and what to do."""


@dataclass(frozen=True)
class Workspace:
    subscription_id: str
    resource_group: str
    workspace: str


def client(workspace: Workspace, credential: Any = None) -> MLClient:
    """An MLClient for the stack's workspace (DefaultAzureCredential unless one is given)."""
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return MLClient(
        credential, workspace.subscription_id, workspace.resource_group, workspace.workspace
    )


def deployment_name(version: str) -> str:
    """Same naming rule as the endpoint component (components/azure/endpoint.py)."""
    return f"model-v{version}"


def resolve_model_version(ml: MLClient, model_name: str, version: str | None = None) -> Model:
    """The registered model to release: `version`, or the newest when None/"latest".
    Archived versions are refused."""
    if version in (None, "", "latest"):
        versions = list(ml.models.list(name=model_name))
        if not versions:
            raise ReleaseError(
                f"model {model_name!r} has no registered version; run the training pipeline first"
            )
        model = max(versions, key=lambda m: int(m.version))
    else:
        model = ml.models.get(model_name, version=str(version))
    if (model.stage or "").lower() == "archived":
        raise ReleaseError(f"model {model_name}:{model.version} is archived; pick another version")
    return model


def create_or_update_deployment(
    ml: MLClient,
    *,
    endpoint_name: str,
    model: Model,
    instance_type: str,
    instance_count: int,
    capture: bool = True,
) -> ManagedOnlineDeployment:
    """Create (or update) `model-v<N>` on the endpoint; it receives no traffic by itself."""
    if instance_count < 1:
        raise ReleaseError(f"instance_count={instance_count} must be at least 1")
    deployment = ManagedOnlineDeployment(
        name=deployment_name(model.version),
        endpoint_name=endpoint_name,
        model=model.id,
        instance_type=instance_type,
        instance_count=instance_count,
        egress_public_network_access="Disabled",
        app_insights_enabled=True,
    )
    if capture:
        from azure.ai.ml.entities import DataCollector, DeploymentCollection

        deployment.data_collector = DataCollector(
            collections={
                "model_inputs": DeploymentCollection(enabled="true"),
                "model_outputs": DeploymentCollection(enabled="true"),
            }
        )
    return ml.online_deployments.begin_create_or_update(deployment).result()


def _check_traffic(
    traffic: Mapping[str, int], mirror: Mapping[str, int], deployments: set[str]
) -> None:
    unknown = sorted((set(traffic) | set(mirror)) - deployments)
    if unknown:
        raise ReleaseError(
            f"traffic names deployments that do not exist: {unknown}; "
            f"existing: {sorted(deployments)}"
        )
    if sum(traffic.values()) != 100 or any(v < 0 for v in traffic.values()):
        raise ReleaseError(f"traffic {dict(traffic)} must be non-negative and sum to 100")
    both = [d for d, v in mirror.items() if v and traffic.get(d)]
    if both or any(not 0 <= v <= 50 for v in mirror.values()):
        raise ReleaseError(
            f"mirror traffic {dict(mirror)} must be 0-50% and only to "
            "deployments without live traffic"
        )


def set_traffic(
    ml: MLClient,
    endpoint_name: str,
    traffic: Mapping[str, int],
    mirror: Mapping[str, int] | None = None,
) -> OnlineEndpoint:
    """Write the endpoint's traffic map after checking it."""
    mirror = dict(mirror or {})
    deployments = {d.name for d in ml.online_deployments.list(endpoint_name)}
    _check_traffic(traffic, mirror, deployments)
    endpoint = ml.online_endpoints.get(endpoint_name)
    endpoint.traffic = dict(traffic)
    endpoint.mirror_traffic = mirror
    return ml.online_endpoints.begin_create_or_update(endpoint).result()


def shift_traffic(ml: MLClient, endpoint_name: str, to: str, percent: int) -> OnlineEndpoint:
    """Give deployment `to` `percent` of live traffic; the rest stays with the others in
    proportion (the stable deployment keeps any rounding)."""
    if not 0 <= percent <= 100:
        raise ReleaseError(f"percent={percent} must be between 0 and 100")
    current = {k: int(v) for k, v in (ml.online_endpoints.get(endpoint_name).traffic or {}).items()}
    others = {k: v for k, v in current.items() if k != to}
    rest = 100 - percent
    total = sum(others.values())
    new = {k: (v * rest // total if total else 0) for k, v in others.items()}
    if others:
        stable = max(others, key=lambda k: others[k])
        new[stable] += rest - sum(new.values())
    elif rest:
        raise ReleaseError(f"no other deployment can take the remaining {rest}%")
    new[to] = percent
    return set_traffic(ml, endpoint_name, new)


def rollback(ml: MLClient, endpoint_name: str, stable: str) -> OnlineEndpoint:
    """All live traffic back to `stable`, mirroring off."""
    current = ml.online_endpoints.get(endpoint_name).traffic or {}
    return set_traffic(
        ml, endpoint_name, {k: (100 if k == stable else 0) for k in {*current, stable}}
    )


def smoke_test(
    ml: MLClient, endpoint_name: str, payload: Mapping[str, Any], deployment: str | None = None
) -> Any:
    """Score `payload` through the endpoint (or one deployment) and return the parsed answer;
    raises ReleaseError when the answer is empty or not JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        request = Path(tmp) / "request.json"
        request.write_text(json.dumps(payload))
        raw = ml.online_endpoints.invoke(
            endpoint_name=endpoint_name, request_file=str(request), deployment_name=deployment
        )
    try:
        answer = json.loads(raw)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ReleaseError(
            f"endpoint {endpoint_name} answered with non-JSON: {raw!r:.200}"
        ) from exc
    if answer in (None, [], {}):
        raise ReleaseError(f"endpoint {endpoint_name} answered with an empty result")
    return answer
