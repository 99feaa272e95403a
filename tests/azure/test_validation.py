"""Table-driven tests of the Azure components' argument validators: each bad value is rejected
before any resource exists, with a message naming the field, the value and the fix."""

from __future__ import annotations

import dataclasses

import pytest

from components.azure.artifact_store import ArtifactStoreArgs, validate_artifact_store_args
from components.azure.budget import BudgetArgs, validate_budget_args
from components.azure.compute import TrainingComputeArgs, validate_compute_args
from components.azure.data_trigger import DataChangeTriggerArgs, validate_data_trigger_args
from components.azure.endpoint import ModelEndpointArgs, validate_endpoint_args
from components.azure.forwarder import EventForwarderArgs, validate_forwarder_args
from components.azure.foundation import FoundationArgs, validate_foundation_args
from components.azure.identities import IdentitiesArgs, validate_identities_args
from components.azure.keys import KeysAndSecretsArgs, validate_keys_args
from components.azure.monitoring import MonitoringArgs, validate_monitoring_args
from components.azure.network import PrivateNetworkArgs, validate_network_args
from components.azure.pipeline import TrainingPipelineArgs, validate_pipeline_args
from components.azure.registry import ContainerRegistryArgs, validate_registry_args
from components.azure.release_trigger import ReleaseTriggerArgs, validate_release_trigger_args
from components.azure.workspace import MlWorkspaceArgs, validate_workspace_args
from core.errors import ArgsError

RG = "rg-test"
ID = "/subscriptions/s/resourceGroups/rg/providers/X.Y/z/n"
TARGETS = {"workspace": ID, "storage": ID, "vault": ID, "registry": ID}
DUTIES = {"pipeline": "p", "release": "r", "monitoring": "m"}

VALID = {
    "foundation": (validate_foundation_args, FoundationArgs(prefix="c-dev", location="westeurope")),
    "keys": (
        validate_keys_args,
        KeysAndSecretsArgs(
            prefix="c-dev", location="westeurope", resource_group_name=RG, tenant_id="t"
        ),
    ),
    "store": (
        validate_artifact_store_args,
        ArtifactStoreArgs(prefix="c-dev", location="x", resource_group_name=RG),
    ),
    "registry": (
        validate_registry_args,
        ContainerRegistryArgs(prefix="c-dev", location="x", resource_group_name=RG),
    ),
    "identities": (
        validate_identities_args,
        IdentitiesArgs(
            prefix="c-dev",
            location="x",
            resource_group_name=RG,
            subscription_id="s",
            storage_account_id=ID,
            vault_id=ID,
            registry_id=ID,
            app_insights_id=ID,
        ),
    ),
    "workspace": (
        validate_workspace_args,
        MlWorkspaceArgs(
            prefix="c-dev",
            location="x",
            resource_group_name=RG,
            subscription_id="s",
            storage_account_id=ID,
            vault_id=ID,
            registry_id=ID,
            app_insights_id=ID,
            identity_id=ID,
            identity_client_id="c",
            duty_principal_ids=DUTIES,
            cmk_key_id="https://k",
        ),
    ),
    "compute": (
        validate_compute_args,
        TrainingComputeArgs(
            location="x", resource_group_name=RG, workspace_name="w", identity_id=ID
        ),
    ),
    "pipeline": (
        validate_pipeline_args,
        TrainingPipelineArgs(
            prefix="c-dev",
            resource_group_name=RG,
            workspace_name="w",
            stack_settings=None,
            image="i",
            compute_id=ID,
            data_uri="https://a/raw/",
        ),
    ),
    "endpoint": (
        validate_endpoint_args,
        ModelEndpointArgs(
            prefix="c-dev",
            location="x",
            resource_group_name=RG,
            workspace_name="w",
            workspace_id=ID,
            identity_id=ID,
            model_name="c-classifier",
            model_version="2",
        ),
    ),
    "monitoring": (
        validate_monitoring_args,
        MonitoringArgs(
            prefix="c-dev",
            location="x",
            resource_group_name=RG,
            workspace_name="w",
            workspace_id=ID,
            identity_id=ID,
            reference_data_uri="r",
            production_data_uri="p",
        ),
    ),
    "budget": (
        validate_budget_args,
        BudgetArgs(prefix="c-dev", resource_group_id=ID, monthly_usd=100),
    ),
    "network": (
        validate_network_args,
        PrivateNetworkArgs(
            prefix="c-dev",
            location="x",
            resource_group_name=RG,
            cidr="10.40.0.0/16",
            targets=TARGETS,
        ),
    ),
    "forwarder": (
        validate_forwarder_args,
        EventForwarderArgs(
            prefix="c-dev",
            stack="c-dev",
            location="x",
            resource_group_name=RG,
            storage_account_name="st",
            identity_id=ID,
            identity_client_id="c",
            workspace_id=ID,
            model_name="c-classifier",
        ),
    ),
    "release": (
        validate_release_trigger_args,
        ReleaseTriggerArgs(
            prefix="c-dev",
            location="x",
            resource_group_name=RG,
            workspace_id=ID,
            model_name="c-classifier",
            function_id=ID,
            storage_account_id=ID,
            identity_id=ID,
        ),
    ),
    "data": (
        validate_data_trigger_args,
        DataChangeTriggerArgs(
            prefix="c-dev",
            location="x",
            resource_group_name=RG,
            storage_account_id=ID,
            function_id=ID,
            identity_id=ID,
        ),
    ),
}

# (component, field overrides, fragments the message must contain)
BAD = [
    ("foundation", {"location": "West Europe"}, ["location='West Europe'", "mlops:region"]),
    ("foundation", {"log_retention_days": 7}, ["log_retention_days=7", "between 30 and 730"]),
    ("keys", {"soft_delete_days": 120}, ["soft_delete_days=120", "between 7 and 90"]),
    ("store", {"redundancy": "Premium_LRS"}, ["redundancy='Premium_LRS'", "Standard_ZRS"]),
    ("store", {"noncurrent_days": 0}, ["noncurrent_days=0", "stores.noncurrentDays"]),
    ("registry", {"sku": "Basic"}, ["sku='Basic'", "Premium", "private=False"]),
    ("registry", {"sku": "Gold", "private": False}, ["sku='Gold'", "Basic, Standard, Premium"]),
    (
        "identities",
        {"grants": (("pipeline", "Owner", "storage"),)},
        ["grants.role='Owner'", "built-in role"],
    ),
    (
        "identities",
        {"grants": (("pipeline", "Reader", "subscription"),)},
        ["grants.scope='subscription'", "never the subscription"],
    ),
    ("identities", {"grants": (("admin", "Reader", "storage"),)}, ["grants.duty='admin'"]),
    ("workspace", {"cmk_key_id": None}, ["cmk_key_id=None", "customer_managed_key=True"]),
    (
        "workspace",
        {"duty_principal_ids": {"pipeline": "p"}},
        ["duty_principal_ids=", "Identities.principal_ids"],
    ),
    ("workspace", {"outbound_fqdns": ("https://pypi.org/simple",)}, ["outbound_fqdns="]),
    ("compute", {"vm_size": "ml.m5.large"}, ["vm_size='ml.m5.large'", "training.instanceType"]),
    ("compute", {"min_nodes": 3, "max_nodes": 2}, ["min_nodes=3", "max_nodes=2"]),
    ("compute", {"compute_name": "Training_Cluster"}, ["compute_name='Training_Cluster'"]),
    ("pipeline", {"cron": "every monday"}, ["cron='every monday'", "schedule.cron"]),
    ("endpoint", {"model_version": "latest"}, ["model_version='latest'", "mlops:model"]),
    ("endpoint", {"strategy": "blue-green"}, ["strategy='blue-green'", "canary, linear"]),
    ("endpoint", {"canary_percent": 60}, ["canary_percent=60", "rollout.trafficStepPercent"]),
    ("endpoint", {"mirror_percent": 80}, ["mirror_percent=80", "caps mirrored"]),
    ("endpoint", {"min_instances": 0}, ["min_instances=0", "at least 1"]),
    ("endpoint", {"previous_model_version": "v1"}, ["previous_model_version='v1'"]),
    ("monitoring", {"alarms": ("cpu",)}, ["alarms=['cpu']", "rollout.alarms"]),
    ("monitoring", {"drift_cron": "hourly"}, ["drift_cron='hourly'", "drift.checkCron"]),
    ("monitoring", {"deployment_id": ID}, ["deployment_id=", "endpoint id"]),
    ("budget", {"monthly_usd": 0}, ["monthly_usd=0", "budget.monthlyUsd"]),
    ("budget", {"alert_percents": (10, 20, 30, 40, 50, 60)}, ["at most 5 thresholds"]),
    ("network", {"cidr": "10.0.0.0/8"}, ["cidr='10.0.0.0/8'", "network.cidr"]),
    ("network", {"targets": {"workspace": ID}}, ["targets=", "storage"]),
    ("forwarder", {"ci_provider": "azuredevops"}, ["ci_provider='azuredevops'", "github"]),
    ("forwarder", {"ci_provider": "github"}, ["repository=None", "ci_token_secret_uri=None"]),
    ("release", {"model_name": "my model"}, ["model_name='my model'"]),
    ("data", {"container": "Raw Data"}, ["container='Raw Data'"]),
    # issue #13: the private forwarder path
    ("network", {"cidr": "10.1.2.0/24"}, ["cidr='10.1.2.0/24'", "/16 to /23", "network.cidr"]),
    ("forwarder", {"private": True}, ["subnet_id=None", "PrivateNetwork.functions_subnet_id"]),
    (
        "release",
        {"queue_id": ID},
        ["subscription_id=None", "dead_letter_container_id=None", "Foundation.subscription_id"],
    ),
    ("data", {"queue_id": ID, "subscription_id": "s"}, ["dead_letter_container_id=None"]),
]


@pytest.mark.parametrize("component", sorted(VALID))
def test_valid_args_pass(component: str) -> None:
    validate, args = VALID[component]
    validate(args)


@pytest.mark.parametrize(
    ("component", "changes", "fragments"), BAD, ids=[f"{c}-{'-'.join(ch)}" for c, ch, _ in BAD]
)
def test_bad_args_are_rejected_with_a_useful_message(component, changes, fragments) -> None:
    validate, args = VALID[component]
    with pytest.raises(ArgsError) as err:
        validate(dataclasses.replace(args, **changes))
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, f"{component}: {fragment!r} not in {message!r}"


def test_ci_token_secret_needs_an_expiry_and_carries_it() -> None:
    """Issue #13: the CI token's Key Vault secret expires at the end of the configured day."""
    import datetime

    from components.azure.keys import KeysAndSecretsArgs, expires_epoch, validate_keys_args

    args = KeysAndSecretsArgs(
        prefix="c-prod", location="westeurope", resource_group_name="rg", tenant_id="t",
        release_token="tok",
    )  # fmt: skip
    with pytest.raises(ArgsError, match=r"release_token_expires_on=None .*tokenExpiresOn"):
        validate_keys_args(args)
    assert expires_epoch(datetime.date(2027, 6, 30)) == 1814399999  # 2027-06-30T23:59:59Z
    assert expires_epoch(None) is None


def test_prod_workspace_is_protected_and_the_token_secret_expires(plan_for) -> None:
    prod, dev = plan_for("contoso-prod"), plan_for("contoso-dev")
    workspace = prod.one("azure-native:machinelearningservices:Workspace")
    assert workspace.options["protect"] and workspace.options["retainOnDelete"]
    assert not dev.one("azure-native:machinelearningservices:Workspace").options["protect"]
    secret = prod.one("azure-native:keyvault:Secret")
    assert secret.inputs["tags"]["mlops-expires-on"] == "2027-06-30"
