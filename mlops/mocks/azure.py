"""Offline-plan answers for Azure resources: ARM-shaped resource ids and the computed outputs
the blueprint reads (principal ids, URIs, login servers), so recorded inputs that reference
other resources look like what Azure would return."""

from __future__ import annotations

import hashlib
from typing import Any

from mlops.mocks import MOCK_SUBSCRIPTION, MOCK_TENANT

# Pulumi type -> (ARM provider/type path, input holding the name, parent path template)
_ARM: dict[str, tuple[str, str]] = {
    "resources:ResourceGroup": ("", "resourceGroupName"),
    "operationalinsights:Workspace": ("Microsoft.OperationalInsights/workspaces", "workspaceName"),
    "applicationinsights:Component": ("Microsoft.Insights/components", "resourceName"),
    "keyvault:Vault": ("Microsoft.KeyVault/vaults", "vaultName"),
    "keyvault:Key": ("Microsoft.KeyVault/vaults/{vaultName}/keys", "keyName"),
    "keyvault:Secret": ("Microsoft.KeyVault/vaults/{vaultName}/secrets", "secretName"),
    "storage:StorageAccount": ("Microsoft.Storage/storageAccounts", "accountName"),
    "storage:BlobServiceProperties": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices",
        "blobServicesName",
    ),
    "storage:BlobContainer": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers",
        "containerName",
    ),
    "storage:Blob": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices/default"
        "/containers/{containerName}/blobs",
        "blobName",
    ),
    "storage:Queue": (
        "Microsoft.Storage/storageAccounts/{accountName}/queueServices/default/queues",
        "queueName",
    ),
    "storage:ManagementPolicy": (
        "Microsoft.Storage/storageAccounts/{accountName}/managementPolicies",
        "managementPolicyName",
    ),
    "containerregistry:Registry": ("Microsoft.ContainerRegistry/registries", "registryName"),
    "managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "resourceName",
    ),
    "machinelearningservices:Workspace": (
        "Microsoft.MachineLearningServices/workspaces",
        "workspaceName",
    ),
    "machinelearningservices:Compute": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/computes",
        "computeName",
    ),
    "machinelearningservices:Schedule": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/schedules",
        "name",
    ),
    "machinelearningservices:OnlineEndpoint": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/onlineEndpoints",
        "endpointName",
    ),
    "machinelearningservices:OnlineDeployment": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/onlineEndpoints"
        "/{endpointName}/deployments",
        "deploymentName",
    ),
    "machinelearningservices:BatchEndpoint": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/batchEndpoints",
        "endpointName",
    ),
    "machinelearningservices:BatchDeployment": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/batchEndpoints"
        "/{endpointName}/deployments",
        "deploymentName",
    ),
    "machinelearningservices:ComponentVersion": (
        "Microsoft.MachineLearningServices/workspaces/{workspaceName}/components/{name}/versions",
        "version",
    ),
    "monitor:AutoscaleSetting": ("Microsoft.Insights/autoscalesettings", "autoscaleSettingName"),
    "monitor:ActionGroup": ("Microsoft.Insights/actionGroups", "actionGroupName"),
    "monitor:MetricAlert": ("Microsoft.Insights/metricAlerts", "ruleName"),
    "eventgrid:SystemTopic": ("Microsoft.EventGrid/systemTopics", "systemTopicName"),
    "eventgrid:SystemTopicEventSubscription": (
        "Microsoft.EventGrid/systemTopics/{systemTopicName}/eventSubscriptions",
        "eventSubscriptionName",
    ),
    "web:AppServicePlan": ("Microsoft.Web/serverfarms", "name"),
    "web:WebApp": ("Microsoft.Web/sites", "name"),
    "network:VirtualNetwork": ("Microsoft.Network/virtualNetworks", "virtualNetworkName"),
    "network:NetworkSecurityGroup": (
        "Microsoft.Network/networkSecurityGroups",
        "networkSecurityGroupName",
    ),
    "network:Subnet": (
        "Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets",
        "subnetName",
    ),
    "network:PrivateEndpoint": ("Microsoft.Network/privateEndpoints", "privateEndpointName"),
    "network:NatGateway": ("Microsoft.Network/natGateways", "natGatewayName"),
    "network:PublicIPAddress": ("Microsoft.Network/publicIPAddresses", "publicIpAddressName"),
    "network:PrivateDnsZoneGroup": (
        "Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups",
        "privateDnsZoneGroupName",
    ),
    "privatedns:PrivateZone": ("Microsoft.Network/privateDnsZones", "privateZoneName"),
    "privatedns:VirtualNetworkLink": (
        "Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks",
        "virtualNetworkLinkName",
    ),
    "resources:Deployment": ("Microsoft.Resources/deployments", "deploymentName"),
    "authorization:RoleAssignment": (
        "Microsoft.Authorization/roleAssignments",
        "roleAssignmentName",
    ),
}


_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _guid(seed: str) -> str:
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def outputs(args: Any) -> tuple[str, dict[str, Any]] | None:
    """(id, state) for an Azure resource, or None to use the default answer."""
    if not args.typ.startswith("azure-native:"):
        return None
    key = args.typ.removeprefix("azure-native:")
    if key not in _ARM:
        return None
    inputs = dict(args.inputs)
    path, name_key = _ARM[key]
    name = inputs.get(name_key) or args.name
    rg = inputs.get("resourceGroupName", "mock-rg")
    state: dict[str, Any] = {**inputs, "name": name}
    identity = inputs.get("identity")
    if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
        # inputs list the identity ids; Azure answers with a map of id -> details
        state["identity"] = {
            **identity,
            "userAssignedIdentities": {
                i: {"principalId": _guid(f"principal/{i}"), "clientId": _guid(f"client/{i}")}
                for i in identity["userAssignedIdentities"]
            },
        }
    if isinstance(identity, dict) and "SystemAssigned" in str(identity.get("type", "")):
        # a system-assigned identity's object id is Azure's answer, not an input
        state["identity"] = {
            **state.get("identity", identity),
            "principalId": _guid(f"principal/{key}/{name}"),
            "tenantId": MOCK_TENANT,
        }
    if key == "resources:ResourceGroup":
        rid = f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{name}"
    elif key == "authorization:RoleAssignment":
        rid = f"{inputs.get('scope', '')}/providers/{path}/{_guid(args.name)}"
    else:
        rid = (
            f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{rg}/providers/"
            f"{path.format_map(_Default(inputs))}/{name}"
        )
    if key == "managedidentity:UserAssignedIdentity":
        state.update(
            principalId=_guid(f"principal/{name}"),
            clientId=_guid(f"client/{name}"),
            tenantId=MOCK_TENANT,
        )
    elif key == "keyvault:Vault":
        props = dict(inputs.get("properties") or {})
        props["vaultUri"] = f"https://{name}.vault.azure.net/"
        state["properties"] = props
    elif key == "keyvault:Key":
        state["keyUriWithVersion"] = (
            f"https://{inputs.get('vaultName')}.vault.azure.net/keys/"
            f"{name}/0123456789abcdef0123456789abcdef"
        )
    elif key == "keyvault:Secret":
        props = dict(inputs.get("properties") or {})
        if _SECRET_SIG in props:  # the whole properties object is secret (it holds the value)
            props = dict(props["value"])
        props["secretUri"] = f"https://{inputs.get('vaultName')}.vault.azure.net/secrets/{name}"
        state["properties"] = props
    elif key == "containerregistry:Registry":
        state["loginServer"] = f"{name}.azurecr.io"
    elif key == "machinelearningservices:Workspace":
        location = inputs.get("location", "westeurope")
        state["mlFlowTrackingUri"] = f"azureml://{location}.api.azureml.ms/mlflow/v1.0{rid}"
        state["workspaceId"] = _guid(f"workspace/{name}")
    elif key == "machinelearningservices:OnlineEndpoint":
        props = dict(inputs.get("properties") or {})
        props["scoringUri"] = (
            f"https://{name}.{inputs.get('location', 'westeurope')}.inference.ml.azure.com/score"
        )
        state["properties"] = props
    elif key == "machinelearningservices:BatchEndpoint":
        props = dict(inputs.get("properties") or {})
        props["scoringUri"] = (
            f"https://{name}.{inputs.get('location', 'westeurope')}.inference.ml.azure.com/jobs"
        )
        state["properties"] = props
    return rid, state


class _Default(dict):
    def __missing__(self, key: str) -> str:
        return f"mock-{key}"


def call(args: Any) -> dict[str, Any] | None:
    return None
