"""The MLflow `Platform` of a release (the on-prem blueprint's registry): approved = tag
approval_status=approved; healthy = KServe `/v2/models/<name>/ready` answers 200; promotion =
copy the files and the version into the target MLflow.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import requests

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


class MlflowPlatform:
    """The MLflow registry and the KServe InferenceService (on-prem)."""

    name = "onprem"

    def __init__(
        self,
        *,
        tracking_uri: str,
        model: str,
        timeout_s: float = 1800,
        poll_s: float = 10,
        sleep: Sleep = time.sleep,
        session: requests.Session | None = None,
    ):
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.tracking_uri, self.model = tracking_uri, model
        self.registry = f"MLflow model {model} at {tracking_uri}"
        self.waiter = Waiter(timeout_s, poll_s, sleep)
        self.http = session or requests.Session()

    def _candidate(self, v: Any) -> Candidate:
        tags = dict(v.tags or {})
        return Candidate(
            str(v.version),
            f"models:/{self.model}/{v.version}",
            tags.get(APPROVED_TAG) == "approved",
            {**tags, "run_id": v.run_id, "source": v.source},
        )

    def newest_approved(self) -> Candidate | None:
        versions = self.client.search_model_versions(f"name = '{self.model}'")
        approved = [self._candidate(v) for v in versions]
        approved = [c for c in approved if c.approved]
        return max(approved, key=lambda c: int(c.version)) if approved else None

    def versions(self) -> list[Candidate]:
        found = self.client.search_model_versions(f"name = '{self.model}'")
        return [self._candidate(v) for v in found]

    def get(self, version: str) -> Candidate:
        from mlflow.exceptions import MlflowException

        try:
            return self._candidate(self.client.get_model_version(self.model, version))
        except MlflowException as exc:
            raise ReleaseError(
                f"version {version} is not in {self.registry}; list the versions in the MLflow "
                "UI or with `MlflowClient().search_model_versions`"
            ) from exc

    @staticmethod
    def _base(outputs: Mapping[str, Any]) -> str:
        url = outputs.get("endpointUrl") or ""
        if not url.endswith("/infer"):
            raise ReleaseFailed(f"endpointUrl={url!r} is not a KServe v2 `.../infer` URL")
        return url.removesuffix("/infer")

    def wait_healthy(self, outputs: Mapping[str, Any], version: str) -> str:
        ready = self._base(outputs) + "/ready"

        def probe() -> str | None:
            try:
                resp = self.http.get(ready, timeout=10)
            except requests.RequestException as exc:
                return f"{ready} unreachable ({exc.__class__.__name__})"
            return None if resp.status_code == 200 else f"{ready} answered {resp.status_code}"

        return self.waiter.until(probe, ready)

    def smoke(self, outputs: Mapping[str, Any], version: str, smoke: SmokeInput) -> str:
        url = self._base(outputs) + "/infer"
        try:
            resp = self.http.post(url, json=smoke.open_inference(), timeout=30)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise ReleaseFailed(f"smoke prediction on {url} failed: {exc}") from exc
        if resp.status_code != 200:
            raise ReleaseFailed(f"smoke prediction on {url} answered {resp.status_code}: {body}")
        if problem := smoke.check(body.get("outputs")):
            raise ReleaseFailed(f"smoke prediction on {url} failed: {problem}")
        return f"{url} answered {json.dumps(body)[:100]}"

    def tag(self, candidate: Candidate, key: str, value: str) -> None:
        self.client.set_model_version_tag(self.model, candidate.version, key, value)

    def import_version(self, source: Any, candidate: Candidate) -> Candidate:
        """Copy the version's files into a run of this server and register them here."""
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException

        for v in self.client.search_model_versions(f"name = '{self.model}'"):
            if (v.tags or {}).get(SOURCE_TAG) == candidate.ref + "@" + source.tracking_uri:
                return self._candidate(v)
        src = source.client.get_model_version(source.model, candidate.version)
        experiment = self.client.get_experiment_by_name("promotions")
        exp_id = (
            experiment.experiment_id if experiment else self.client.create_experiment("promotions")
        )
        run = self.client.create_run(exp_id, tags={SOURCE_TAG: candidate.ref})
        with tempfile.TemporaryDirectory() as tmp:
            local = download_artifacts(
                artifact_uri=src.source, dst_path=tmp, tracking_uri=source.tracking_uri
            )
            self.client.log_artifacts(run.info.run_id, local, "model")
        self.client.set_terminated(run.info.run_id)
        with contextlib.suppress(MlflowException):  # it exists already
            self.client.create_registered_model(self.model)
        tags = {
            **{k: v for k, v in (src.tags or {}).items()},
            SOURCE_TAG: candidate.ref + "@" + source.tracking_uri,
            "mlops.source_version": candidate.version,
        }
        created = self.client.create_model_version(
            self.model,
            f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags=tags,
            description=f"promoted from {candidate.ref} at {source.tracking_uri}",
        )
        return self._candidate(created)
