"""The registry and endpoint of each platform, as `mlops.release` needs them.

- sagemaker: approved = package status Approved; healthy = endpoint InService on the pinned
  package; promotion = re-register the package in the target group, the source ARN kept.
- azureml: approved = tag approval_status=approved and not archived; healthy = deployment
  `model-v<N>` Succeeded; promotion = copy the version into the target workspace.
- onprem: approved = tag approval_status=approved (MLflow); healthy = KServe
  `/v2/models/<name>/ready` answers 200; promotion = copy the files and the version into the
  target MLflow.

Clients come in through the constructors, so the tests pass moto's boto3, an `MLClient` with
intercepted HTTP and a sqlite MLflow registry; `platform_for` builds the real ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from mlops.config import StackSettings
from mlops.release import Candidate, ReleaseError, ReleaseFailed, SmokeInput

APPROVED_TAG = "approval_status"
SOURCE_TAG = "mlops.promoted_from"
Sleep = Callable[[float], None]


def model_name(settings: StackSettings) -> str:
    """The registered model name every blueprint uses (pipelines.definition)."""
    return f"{settings.client}-classifier"


class _Waiter:
    def __init__(self, timeout_s: float, poll_s: float, sleep: Sleep):
        self.timeout_s, self.poll_s, self.sleep = timeout_s, poll_s, sleep

    def until(self, probe: Callable[[], str | None], what: str) -> str:
        """Poll `probe` (None: healthy, else the state now) until healthy or timed out."""
        waited, state = 0.0, "unknown"
        while True:
            state = probe()
            if state is None:
                return f"{what} healthy after {waited:.0f} s"
            if state.startswith("fatal:") or waited >= self.timeout_s:
                raise ReleaseFailed(
                    f"{what} not healthy after {waited:.0f} s: {state.removeprefix('fatal:')}"
                )
            self.sleep(self.poll_s)
            waited += self.poll_s


class AwsPlatform:
    """SageMaker model package group and endpoint (boto3)."""

    name = "sagemaker"

    def __init__(
        self,
        *,
        group: str,
        region: str,
        account: str,
        sagemaker: Any,
        runtime: Any,
        image: str | None = None,
        timeout_s: float = 3600,
        poll_s: float = 30,
        sleep: Sleep = time.sleep,
    ):
        self.group, self.region, self.account, self.image = group, region, account, image
        self.sm, self.runtime = sagemaker, runtime
        self.registry = f"model package group {group}"
        self.waiter = _Waiter(timeout_s, poll_s, sleep)

    def _candidate(self, desc: Mapping[str, Any]) -> Candidate:
        meta = dict(desc.get("CustomerMetadataProperties") or {})
        return Candidate(
            version=str(desc["ModelPackageVersion"]),
            ref=desc["ModelPackageArn"],
            approved=desc.get("ModelApprovalStatus") == "Approved",
            lineage={"created": str(desc.get("CreationTime", "")), **meta},
        )

    def arn(self, version: str) -> str:
        return (
            f"arn:aws:sagemaker:{self.region}:{self.account}:model-package/{self.group}/{version}"
        )

    def newest_approved(self) -> Candidate | None:
        from pipelines.release.aws import newest_approved

        found = newest_approved(self.sm, self.group)
        return self.get(str(found.version)) if found else None

    def get(self, version: str) -> Candidate:
        try:
            desc = self.sm.describe_model_package(ModelPackageName=self.arn(version))
        except self.sm.exceptions.ClientError as exc:
            raise ReleaseError(
                f"version {version} is not in {self.registry} ({self.region}, account "
                f"{self.account}): {exc.response['Error'].get('Message', exc)}; list the "
                "versions with `aws sagemaker list-model-packages --model-package-group-name "
                f"{self.group}`"
            ) from exc
        return self._candidate(desc)

    def wait_healthy(self, outputs: Mapping[str, Any], version: str) -> str:
        endpoint = outputs.get("endpointName") or ""
        if not endpoint:
            raise ReleaseFailed("the stack exports no endpointName after the update")
        want = self.arn(version)

        def probe() -> str | None:
            try:
                desc = self.sm.describe_endpoint(EndpointName=endpoint)
            except self.sm.exceptions.ClientError as exc:
                return f"endpoint {endpoint} cannot be described ({exc})"
            status = desc["EndpointStatus"]
            if status in ("Failed", "UpdateRollbackFailed", "Deleting"):
                return f"fatal:endpoint {endpoint} is {status}: {desc.get('FailureReason', '')}"
            if status != "InService":
                return f"endpoint {endpoint} is {status}"
            config = self.sm.describe_endpoint_config(EndpointConfigName=desc["EndpointConfigName"])
            served = []
            for variant in config["ProductionVariants"]:
                model = self.sm.describe_model(ModelName=variant["ModelName"])
                served.append((model.get("PrimaryContainer") or {}).get("ModelPackageName", ""))
            if want not in served:
                return (
                    f"fatal:endpoint {endpoint} is InService on {served}, not {want} "
                    "(a rollback alarm fired, or the update did not reach the endpoint)"
                )
            return None

        return self.waiter.until(probe, f"endpoint {endpoint}")

    def smoke(self, outputs: Mapping[str, Any], version: str, smoke: SmokeInput) -> str:
        from pipelines.release.aws import smoke_test

        endpoint = outputs["endpointName"]
        result = smoke_test(self.runtime, endpoint, smoke.dataframe_split())
        problem = None if not result.ok else smoke.check(result.body)
        if not result.ok or problem:
            raise ReleaseFailed(
                f"smoke prediction on {endpoint} failed: {problem or result.detail}"
            )
        return f"{endpoint} answered {json.dumps(result.body)[:100]}"

    def tag(self, candidate: Candidate, key: str, value: str) -> None:
        """On the version's metadata (SageMaker does not tag model package versions)."""
        desc = self.sm.describe_model_package(ModelPackageName=candidate.ref)
        meta = {**(desc.get("CustomerMetadataProperties") or {}), key: value}
        self.sm.update_model_package(
            ModelPackageArn=candidate.ref,
            ModelApprovalStatus=desc["ModelApprovalStatus"],  # unchanged, stated explicitly
            CustomerMetadataProperties=meta,
        )

    def import_version(self, source: Any, candidate: Candidate) -> Candidate:
        """Re-register the source package in this group: same model data and inference spec
        (this stack's own image when mlops:image pins one), approved, the source ARN kept."""
        for summary in self._all_packages():
            desc = self.sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if (desc.get("CustomerMetadataProperties") or {}).get(SOURCE_TAG) == candidate.ref:
                return self._candidate(desc)  # promoted before: same version, no duplicate
        src = source.sm.describe_model_package(ModelPackageName=candidate.ref)
        spec = src["InferenceSpecification"]
        if self.image:
            spec = {**spec, "Containers": [{**c, "Image": self.image} for c in spec["Containers"]]}
        meta = {
            **(src.get("CustomerMetadataProperties") or {}),
            SOURCE_TAG: candidate.ref,
            "mlops.source_version": candidate.version,
        }
        arn = self.sm.create_model_package(
            ModelPackageGroupName=self.group,
            ModelPackageDescription=f"promoted from {candidate.ref}",
            InferenceSpecification=spec,
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties=meta,
        )["ModelPackageArn"]
        return self._candidate(self.sm.describe_model_package(ModelPackageName=arn))

    def _all_packages(self) -> list[dict[str, Any]]:
        out, kwargs = [], {"ModelPackageGroupName": self.group, "MaxResults": 100}
        while True:
            page = self.sm.list_model_packages(**kwargs)
            out.extend(page.get("ModelPackageSummaryList", []))
            if not page.get("NextToken"):
                return out
            kwargs["NextToken"] = page["NextToken"]


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
        self.waiter = _Waiter(timeout_s, poll_s, sleep)

    @staticmethod
    def _candidate(m: Any) -> Candidate:
        tags = dict(m.tags or {})
        approved = tags.get(APPROVED_TAG) == "approved" and (m.stage or "").lower() != "archived"
        return Candidate(str(m.version), m.id, approved, tags)

    def newest_approved(self) -> Candidate | None:
        found = [self._candidate(m) for m in self.ml.models.list(name=self.model)]
        approved = [c for c in found if c.approved]
        return max(approved, key=lambda c: int(c.version)) if approved else None

    def get(self, version: str) -> Candidate:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._candidate(self.ml.models.get(self.model, version=version))
        except ResourceNotFoundError as exc:
            raise ReleaseError(
                f"version {version} is not in {self.registry}; list the versions with "
                f"`az ml model list --name {self.model}`"
            ) from exc

    def wait_healthy(self, outputs: Mapping[str, Any], version: str) -> str:
        from pipelines.release.azure import deployment_name

        endpoint, deployment = outputs.get("endpointName") or "", deployment_name(version)
        if not endpoint:
            raise ReleaseFailed("the stack exports no endpointName after the update")

        def probe() -> str | None:
            from azure.core.exceptions import ResourceNotFoundError

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
        from pipelines.release.azure import ReleaseError as AzureError
        from pipelines.release.azure import deployment_name, smoke_test

        endpoint, deployment = outputs["endpointName"], deployment_name(version)
        try:
            answer = smoke_test(self.ml, endpoint, smoke.input_data(), deployment=deployment)
        except AzureError as exc:
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
        self.waiter = _Waiter(timeout_s, poll_s, sleep)
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


def platform_for(settings: StackSettings, outputs: Mapping[str, Any]) -> Any:
    """The real clients for a stack, from its deployed outputs and the CI's credentials."""
    name = model_name(settings)
    if settings.blueprint == "sagemaker":
        import boto3

        from components.aws.common import StackNames

        session = boto3.session.Session(region_name=settings.region)
        account = session.client("sts").get_caller_identity()["Account"]
        return AwsPlatform(
            group=StackNames(settings.prefix).model_package_group,
            region=settings.region,
            account=account,
            sagemaker=session.client("sagemaker"),
            runtime=session.client("sagemaker-runtime"),
            image=settings.image,
        )
    if settings.blueprint == "azureml":
        from pipelines.release.azure import Workspace, client

        workspace_id = str(outputs.get("modelRegistry") or "")
        parts = workspace_id.strip("/").split("/")
        if len(parts) < 8 or parts[0] != "subscriptions":
            raise ReleaseError(
                f"stack output modelRegistry={workspace_id!r} is not an Azure ML workspace id; "
                "run `pulumi up` on the stack once before releasing"
            )
        ws = Workspace(parts[1], parts[3], parts[7])
        return AzurePlatform(client(ws), model=name, workspace=ws.workspace)
    uri = os.environ.get("MLOPS_TRACKING_URI") or str(outputs.get("trackingUri") or "")
    if not uri:
        raise ReleaseError(
            "the stack exports no trackingUri; run `pulumi up` once, or set MLOPS_TRACKING_URI"
        )
    return MlflowPlatform(tracking_uri=uri, model=name)
