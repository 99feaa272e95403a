"""Release and promotion helpers for the SageMaker blueprint (boto3; they run in the CI
release workflow, never inside Pulumi).

The release flow on AWS:

1. The pipeline registers a version in the stack's model package group; a person (or the dev
   tier's auto approval) sets it to Approved.
2. The release trigger's EventBridge rule forwards the "SageMaker Model Package State Change"
   event to CI. `release_from_event` checks the event is an approval of *this* stack's group
   and that SageMaker still holds the version as Approved, and returns the version to pin.
3. CI runs `pulumi config set mlops:model <version>` and `pulumi up`: Pulumi updates the
   endpoint with a blue/green rollout guarded by alarms.
4. `rollout_outcome` tells whether the endpoint now serves the new configuration, rolled back,
   failed or is still updating; `smoke_test` invokes it once.

`newest_approved` answers "which version should this stack serve" when promoting without an
event (e.g. dev -> prod by hand)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

DETAIL_TYPE = "SageMaker Model Package State Change"
SOURCE = "aws.sagemaker"
APPROVED = "Approved"

Outcome = Literal["deployed", "rolled_back", "failed", "updating", "missing"]


class ReleaseError(RuntimeError):
    """The release cannot proceed; the message says why and what to do."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model package group."""

    group: str
    version: int
    arn: str
    status: str


@dataclass(frozen=True)
class ReleaseDecision:
    """What CI should do with an event: release `version`, or ignore it for `reason`."""

    release: bool
    reason: str
    version: ModelVersion | None = None


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


def describe_version(
    sagemaker: Any, group: str, version: int | str, *, region: str, account: str
) -> ModelVersion:
    """A version as SageMaker holds it now. Raises ReleaseError if it does not exist."""
    arn = f"arn:aws:sagemaker:{region}:{account}:model-package/{group}/{int(version)}"
    try:
        desc = sagemaker.describe_model_package(ModelPackageName=arn)
    except sagemaker.exceptions.ClientError as exc:
        raise ReleaseError(
            f"model package {arn} cannot be read ({exc}); check the version "
            f"exists in group {group!r}"
        ) from exc
    return ModelVersion(
        group=group,
        version=int(desc["ModelPackageVersion"]),
        arn=desc["ModelPackageArn"],
        status=desc["ModelApprovalStatus"],
    )


def parse_approval_event(event: Mapping[str, Any] | str) -> ModelVersion:
    """The version an EventBridge "Model Package State Change" event (raw, or the CI
    payload's JSON) is about. Raises ReleaseError for any other event."""
    if isinstance(event, str):
        event = json.loads(event)
    if event.get("source") != SOURCE or event.get("detail-type") != DETAIL_TYPE:
        raise ReleaseError(
            f"not a {DETAIL_TYPE!r} event from {SOURCE}: source="
            f"{event.get('source')!r}, detail-type={event.get('detail-type')!r}"
        )
    detail = event.get("detail") or {}
    missing = [
        k
        for k in (
            "ModelPackageGroupName",
            "ModelPackageVersion",
            "ModelPackageArn",
            "ModelApprovalStatus",
        )
        if k not in detail
    ]
    if missing:
        raise ReleaseError(f"event detail lacks {', '.join(missing)}")
    return ModelVersion(
        group=detail["ModelPackageGroupName"],
        version=int(detail["ModelPackageVersion"]),
        arn=detail["ModelPackageArn"],
        status=detail["ModelApprovalStatus"],
    )


def release_from_event(
    event: Mapping[str, Any] | str, sagemaker: Any, *, group: str
) -> ReleaseDecision:
    """Decide whether an event releases a version of `group`.

    The event is re-checked against SageMaker: an approval that was revoked since (the event
    is delivered late, or retried from the dead-letter queue) is not released."""
    seen = parse_approval_event(event)
    if seen.group != group:
        return ReleaseDecision(False, f"event is for group {seen.group!r}, not {group!r}")
    if seen.status != APPROVED:
        return ReleaseDecision(False, f"version {seen.version} is {seen.status}, not Approved")
    desc = sagemaker.describe_model_package(ModelPackageName=seen.arn)
    status = desc["ModelApprovalStatus"]
    if status != APPROVED:
        return ReleaseDecision(
            False,
            f"version {seen.version} is {status} now; the approval was withdrawn after the event",
        )
    newest = newest_approved(sagemaker, group)
    if newest is not None and newest.version > seen.version:
        return ReleaseDecision(
            False,
            f"version {newest.version} is approved and newer than {seen.version}; release that one",
            newest,
        )
    return ReleaseDecision(
        True,
        f"release version {seen.version}",
        ModelVersion(group=group, version=seen.version, arn=seen.arn, status=status),
    )


def rollout_outcome(sagemaker: Any, endpoint: str, *, expected_config: str) -> Outcome:
    """Where a Pulumi-driven endpoint update stands.

    `deployed`: InService on `expected_config`; `rolled_back`: InService on another config
    (an alarm fired and SageMaker rolled back); `failed`: Failed or rollback failed;
    `updating`: still creating/updating; `missing`: no such endpoint."""
    try:
        desc = sagemaker.describe_endpoint(EndpointName=endpoint)
    except sagemaker.exceptions.ClientError as exc:
        if "Could not find" in str(exc) or "ValidationException" in str(exc):
            return "missing"
        raise
    status = desc["EndpointStatus"]
    if status == "InService":
        return "deployed" if desc["EndpointConfigName"] == expected_config else "rolled_back"
    if status in ("Failed", "UpdateRollbackFailed"):
        return "failed"
    return "updating"


def wait_in_service(
    sagemaker: Any,
    endpoint: str,
    *,
    timeout_s: float = 3600,
    poll_s: float = 30,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Wait until the endpoint is InService; returns its config name. Raises ReleaseError on
    Failed, or when `timeout_s` passes."""
    waited = 0.0
    while True:
        desc = sagemaker.describe_endpoint(EndpointName=endpoint)
        status = desc["EndpointStatus"]
        if status == "InService":
            return desc["EndpointConfigName"]
        if status in ("Failed", "UpdateRollbackFailed", "Deleting"):
            raise ReleaseError(
                f"endpoint {endpoint} is {status}: {desc.get('FailureReason', 'no reason given')}"
            )
        if waited >= timeout_s:
            raise ReleaseError(f"endpoint {endpoint} still {status} after {timeout_s:.0f} s")
        sleep(poll_s)
        waited += poll_s


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


def pin_previous_config(sagemaker: Any, endpoint: str, config: str) -> None:
    """Emergency rollback outside Pulumi: point the endpoint back at `config`, keeping its
    blue/green deployment settings. Pulumi owns the endpoint, so afterwards set `mlops:model`
    back to the version `config` serves and run `pulumi up`, or the next update undoes this."""
    sagemaker.update_endpoint(
        EndpointName=endpoint, EndpointConfigName=config, RetainDeploymentConfig=True
    )
