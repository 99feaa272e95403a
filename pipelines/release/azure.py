"""The Azure ML `Platform` of a release, with the real `azure-ai-ml` client.

approved = tag approval_status=approved and not archived; healthy = deployment `model-v<N>`
Succeeded; promotion = copy the version into the target workspace. Pulumi owns the endpoint
and its traffic map: the release pins `mlops:model` and runs `pulumi up`.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.ai.ml import MLClient
from azure.core.exceptions import ResourceNotFoundError

from core.names import azure_deployment_name as deployment_name
from pipelines.release import (
    APPROVED_TAG,
    SOURCE_TAG,
    Candidate,
    ReleaseError,
    ReleaseFailed,
    Sleep,
    SmokeInput,
    Waiter,
)


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


class AzurePlatform:
    """The Azure ML workspace registry and managed online endpoint (azure-ai-ml)."""

    name = "azureml"

    def __init__(
        self,
        ml: Any,
        *,
        model: str,
        workspace: str,
        timeout_s: float = 3600,
        poll_s: float = 30,
        sleep: Sleep = time.sleep,
    ):
        self.ml, self.model, self.workspace = ml, model, workspace
        self.registry = f"model {model} in workspace {workspace}"
        self.waiter = Waiter(timeout_s, poll_s, sleep)

    @staticmethod
    def _candidate(m: Any) -> Candidate:
        tags = dict(m.tags or {})
        approved = tags.get(APPROVED_TAG) == "approved" and (m.stage or "").lower() != "archived"
        return Candidate(str(m.version), m.id, approved, tags)

    def newest_approved(self) -> Candidate | None:
        found = [self._candidate(m) for m in self.ml.models.list(name=self.model)]
        approved = [c for c in found if c.approved]
        return max(approved, key=lambda c: int(c.version)) if approved else None

    def versions(self) -> list[Candidate]:
        return [self._candidate(m) for m in self.ml.models.list(name=self.model)]

    def get(self, version: str) -> Candidate:

        try:
            return self._candidate(self.ml.models.get(self.model, version=version))
        except ResourceNotFoundError as exc:
            raise ReleaseError(
                f"version {version} is not in {self.registry}; list the versions with "
                f"`az ml model list --name {self.model}`"
            ) from exc

    def wait_healthy(self, outputs: Mapping[str, Any], version: str) -> str:
        endpoint, deployment = outputs.get("endpointName") or "", deployment_name(version)
        if not endpoint:
            raise ReleaseFailed("the stack exports no endpointName after the update")

        def probe() -> str | None:

            try:
                dep = self.ml.online_deployments.get(deployment, endpoint)
            except ResourceNotFoundError:
                return f"deployment {deployment} does not exist yet"
            state = dep.provisioning_state or "Unknown"
            if state in ("Failed", "Canceled"):
                return f"fatal:deployment {deployment} is {state}"
            return None if state == "Succeeded" else f"deployment {deployment} is {state}"

        return self.waiter.until(probe, f"{endpoint}/{deployment}")

    def smoke(self, outputs: Mapping[str, Any], version: str, smoke: SmokeInput) -> str:
        endpoint, deployment = outputs["endpointName"], deployment_name(version)
        try:
            answer = smoke_test(self.ml, endpoint, smoke.input_data(), deployment=deployment)
        except ReleaseError as exc:
            raise ReleaseFailed(f"smoke prediction on {deployment} failed: {exc}") from exc
        if problem := smoke.check(answer):
            raise ReleaseFailed(f"smoke prediction on {deployment} failed: {problem}")
        return f"{endpoint}/{deployment} answered {json.dumps(answer)[:100]}"

    def tag(self, candidate: Candidate, key: str, value: str) -> None:
        model = self.ml.models.get(self.model, version=candidate.version)
        model.tags = {**(model.tags or {}), key: value}
        self.ml.models.create_or_update(model)

    def import_version(self, source: Any, candidate: Candidate) -> Candidate:
        """Copy the source version into this workspace (same files, tags, lineage)."""
        from azure.ai.ml.entities import Model

        existing = [self._candidate(m) for m in self.ml.models.list(name=self.model)]
        for c in existing:
            if c.lineage.get(SOURCE_TAG) == candidate.ref:
                return c
        src = source.ml.models.get(source.model, version=candidate.version)
        version = str(max((int(c.version) for c in existing), default=0) + 1)
        copy = Model(
            name=self.model,
            version=version,
            path=src.path,
            type=src.type,
            description=f"promoted from {candidate.ref}",
            tags={**(src.tags or {}), SOURCE_TAG: candidate.ref},
            properties={**(src.properties or {}), "mlops.source_version": candidate.version},
        )
        return self._candidate(self.ml.models.create_or_update(copy))
