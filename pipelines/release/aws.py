"""The SageMaker `Platform` of a release: the stack's model package group and endpoint (boto3;
it runs in the CI release workflow, never inside Pulumi).

approved = package status Approved; healthy = endpoint InService on the pinned package;
promotion = re-register the package in the target group, the source ARN kept. The release
trigger's EventBridge rule starts the CI release workflow when a version is approved; the
workflow runs `mlops release`, which resolves the version here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.release import (
    SOURCE_TAG,
    Candidate,
    ReleaseError,
    ReleaseFailed,
    Sleep,
    SmokeInput,
    Waiter,
)

APPROVED = "Approved"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model package group."""

    group: str
    version: int
    arn: str
    status: str


def newest_approved(sagemaker: Any, group: str) -> ModelVersion | None:
    """The newest Approved version of `group` (None when there is none)."""
    best: ModelVersion | None = None
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelApprovalStatus": APPROVED,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
    }
    while True:
        page = sagemaker.list_model_packages(**kwargs)
        for summary in page.get("ModelPackageSummaryList", []):
            if summary.get("ModelApprovalStatus") != APPROVED:
                continue
            candidate = ModelVersion(
                group=summary.get("ModelPackageGroupName", group),
                version=int(summary["ModelPackageVersion"]),
                arn=summary["ModelPackageArn"],
                status=APPROVED,
            )
            if best is None or candidate.version > best.version:
                best = candidate
        token = page.get("NextToken")
        if not token:
            return best
        kwargs["NextToken"] = token


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    detail: str
    body: Any = None


def smoke_test(
    runtime: Any,
    endpoint: str,
    payload: Mapping[str, Any],
    *,
    check: Callable[[Any], bool] | None = None,
) -> SmokeResult:
    """Invoke the endpoint once with a JSON payload (MLflow pyfunc `dataframe_split` or
    `instances`); ok when it answers JSON and `check(body)` (if given) holds."""
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint,
            ContentType="application/json",
            Accept="application/json",
            Body=json.dumps(payload),
        )
    except runtime.exceptions.ClientError as exc:
        return SmokeResult(False, f"invoke failed: {exc}")
    raw = response["Body"].read()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return SmokeResult(False, f"answer is not JSON: {raw[:200]!r}")
    if check is not None and not check(body):
        return SmokeResult(False, f"answer failed the check: {str(body)[:200]}", body)
    return SmokeResult(True, "endpoint answered", body)


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
        self.waiter = Waiter(timeout_s, poll_s, sleep)

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

    def versions(self) -> list[Candidate]:
        return [
            self._candidate(self.sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]))
            for p in self._all_packages()
        ]

    def _all_packages(self) -> list[dict[str, Any]]:
        out, kwargs = [], {"ModelPackageGroupName": self.group, "MaxResults": 100}
        while True:
            page = self.sm.list_model_packages(**kwargs)
            out.extend(page.get("ModelPackageSummaryList", []))
            if not page.get("NextToken"):
                return out
            kwargs["NextToken"] = page["NextToken"]
