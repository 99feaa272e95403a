"""Names every layer shares: the physical names of resources other resources (and the release
and catalog code) must know in advance, the registered model's name, and Azure ML deployment
names. Defined once here; components, compilers and the release code import them."""

from __future__ import annotations

from dataclasses import dataclass


def model_name(client: str) -> str:
    """The registered model every blueprint trains, registers and serves for a client."""
    return f"{client}-classifier"


def azure_deployment_name(version: str) -> str:
    """The Azure ML online or batch deployment that serves registered version `version`."""
    return f"model-v{version}"


@dataclass(frozen=True)
class StackNames:
    """Physical names of the resources other resources (and policies) must know in advance.

    Fixing them up front lets an IAM policy name the exact pipeline, endpoint or group it
    grants on before that resource exists, instead of falling back to `*`."""

    prefix: str

    @property
    def repository(self) -> str:
        return f"{self.prefix}-mlops"

    @property
    def model_package_group(self) -> str:
        return f"{self.prefix}-models"

    @property
    def pipeline(self) -> str:
        return f"{self.prefix}-training"

    @property
    def schedule(self) -> str:
        return f"{self.prefix}-continuous-training"

    @property
    def data_rule(self) -> str:
        return f"{self.prefix}-new-raw-data"

    @property
    def release_rule(self) -> str:
        return f"{self.prefix}-model-approved"

    @property
    def api_destination(self) -> str:
        return f"{self.prefix}-release"

    @property
    def tracking_server(self) -> str:
        return f"{self.prefix}-mlflow"

    @property
    def endpoint(self) -> str:
        return f"{self.prefix}-endpoint"

    @property
    def monitoring_schedule(self) -> str:
        return f"{self.prefix}-data-quality"

    @property
    def alerts_topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def training_dlq(self) -> str:
        return f"{self.prefix}-training-dlq"

    @property
    def release_dlq(self) -> str:
        return f"{self.prefix}-release-dlq"

    @property
    def data_drift_rule(self) -> str:
        return f"{self.prefix}-training-data-drift"

    @property
    def data_drift_dlq(self) -> str:
        return f"{self.prefix}-data-drift-dlq"

    @property
    def monitoring_dlq(self) -> str:
        return f"{self.prefix}-drift-dlq"

    def role(self, duty: str) -> str:
        return f"{self.prefix}-{duty}"

    @property
    def budget(self) -> str:
        return f"{self.prefix}-monthly"
