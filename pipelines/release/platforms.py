"""`platform_for`: the real registry and endpoint clients of a stack, from its deployed outputs
and the CI's credentials. Clients come in through the platforms' constructors, so the tests
pass moto's boto3, an `MLClient` with intercepted HTTP and a sqlite MLflow registry instead.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from core.config import StackSettings
from core.names import StackNames
from pipelines.release import Platform, ReleaseError, model_name
from pipelines.release.mlflow import MlflowPlatform


@functools.cache
def _botocore_models() -> Any:
    """botocore's data loader (service models, endpoints), shared by the sessions of a process:
    parsing the SageMaker, STS and endpoint models costs ~0.2 s of CPU per new session, and
    `mlops promote` builds a platform for each of its two stacks."""
    import botocore.loaders

    return botocore.loaders.create_loader()


def _aws_session(region: str) -> Any:
    """A new boto3 session (its own credentials and config) on the shared service models."""
    import boto3
    import botocore.session

    core = botocore.session.Session()
    core.register_component("data_loader", _botocore_models())
    session = boto3.session.Session(botocore_session=core, region_name=region)
    # boto3 appends its own data path to the loader of every session it wraps: once is enough
    paths = core.get_component("data_loader").search_paths
    paths[:] = list(dict.fromkeys(paths))
    return session


def platform_for(settings: StackSettings, outputs: Mapping[str, Any]) -> Platform:
    """The real clients for a stack, from its deployed outputs and the CI's credentials."""
    name = model_name(settings)
    if settings.blueprint == "sagemaker":
        # boto3 (in _aws_session) and azure-ai-ml are imported only for the platform a stack
        # uses: an Azure release does not pay for botocore's models, nor an AWS one for
        # azure-ai-ml.
        from pipelines.release.aws import AwsPlatform

        session = _aws_session(settings.region)
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
        # lazy: azure-ai-ml, only for an Azure ML stack
        from pipelines.release.azure import AzurePlatform, Workspace, client

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
