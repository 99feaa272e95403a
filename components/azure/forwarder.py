"""Event forwarder: the small Azure Function that Event Grid's model-registered and
new-raw-data events reach. Its code is `pipelines/services/azure_forwarder.py`, packaged with a
Functions v2 entry point and run from a package blob in the artifact store.

Two shapes, by network mode:

- public (dev, cheap): a Linux consumption (Y1) app with an Event Grid trigger; Event Grid
  calls it over HTTPS.
- private (staging, prod): nothing reaches the app. Event Grid writes to the `events` queue of
  the artifact store (public network access disabled; see `_eventgrid.py`), and a queue trigger
  on a Linux Elastic Premium (EP1) app reads it through the store's queue private endpoint. The
  app has public network access disabled and no inbound private endpoint (a queue trigger polls
  outward, so none is needed), is integrated with the VNet's `functions` subnet and routes all
  outbound traffic through it: to the stores over their private endpoints, to GitHub and ARM
  over 443 through the NAT gateway. Elastic Premium rather than Flex Consumption: Flex does not
  run from a `WEBSITE_RUN_FROM_PACKAGE` URL (it deploys through its own deployment container
  and a publish step outside the program), while EP runs the same package blob as dev with the
  release identity, and on Linux from a package URL needs no Azure Files content share (whose
  connection string would need the shared keys the store disables). The cost is one always-on
  EP1 instance (`maximum_elastic_worker_count` 1: events are rare).

Either way the function runs as the release identity: it reads the CI token through a Key Vault
reference (never a plain app setting), reaches its host storage and the queue with that identity
(no connection string with keys), and submits training jobs with it. HTTPS only, TLS 1.2, FTP
disabled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pulumi import ResourceOptions
from pulumi_azure_native import storage, web

from components.azure._common import check, dashed_name, raise_if
from pipelines.services import azure_forwarder

FUNCTION_NAME = "forward"
PROVIDERS = ("none", "github")
QUEUE_NAME = "events"
"""Artifact-store queue Event Grid delivers to in private mode."""
QUEUE_CONNECTION = "EVENTS_QUEUE"
"""Prefix of the identity-based queue connection settings (`<prefix>__queueServiceUri`)."""
_CODE = Path(azure_forwarder.__file__).resolve()


def package() -> pulumi.AssetArchive:
    """The Function package: entry point, forwarder module, host.json, requirements.txt."""
    host = {
        "version": "2.0",
        "extensionBundle": {
            "id": "Microsoft.Azure.Functions.ExtensionBundle",
            "version": "[4.*, 5.0.0)",
        },
        # Event Grid has written queue messages both as plain JSON and as base64 of it: the
        # trigger passes the text through and the forwarder decodes either (private mode).
        # A message that fails 5 times moves to `events-poison`.
        "extensions": {"queues": {"messageEncoding": "none", "maxDequeueCount": 5}},
    }
    return pulumi.AssetArchive(
        {
            "function_app.py": pulumi.StringAsset(azure_forwarder.FUNCTION_APP),
            "azure_forwarder.py": pulumi.FileAsset(str(_CODE)),
            "host.json": pulumi.StringAsset(json.dumps(host)),
            "requirements.txt": pulumi.StringAsset("azure-functions\nazure-identity\nrequests\n"),
        }
    )


@dataclass(frozen=True)
class EventForwarderArgs:
    prefix: str
    """`<client>-<env>`: start of every resource name."""
    stack: str
    """Stack name sent to CI."""
    location: str
    """Azure location of the function app."""
    resource_group_name: pulumi.Input[str]
    """Resource group of the stack."""
    storage_account_name: pulumi.Input[str]
    """Artifact store: holds the code package and the Functions host state."""
    identity_id: pulumi.Input[str]
    """User-assigned identity the function runs as (the release identity)."""
    identity_client_id: pulumi.Input[str]
    """Client id of that identity."""
    workspace_id: pulumi.Input[str]
    """Workspace that training jobs are submitted to."""
    model_name: str
    """Registered model whose new versions start a release."""
    ci_provider: str = "none"
    """none or github: the CI system a release event starts."""
    repository: str | None = None
    """`owner/repo` of the release workflow (github)."""
    event_type: str = "mlops-release"
    """`repository_dispatch` event type of the release workflow."""
    ci_token_secret_uri: pulumi.Input[str] | None = None
    """Key Vault secret URI of the CI token (required for github)."""
    training_job: pulumi.Input[str] = ""
    """REST properties (JSON) of the training job new raw data starts; "": none."""
    private: bool = False
    """Queue trigger on an Elastic Premium app in the VNet, no public access (staging, prod)."""
    subnet_id: pulumi.Input[str] | None = None
    """Private mode: the VNet subnet (delegated to Microsoft.Web/serverFarms) the app joins."""
    tags: dict[str, str] = field(default_factory=dict)
    """Tags set on every resource."""


def validate_forwarder_args(args: EventForwarderArgs) -> None:
    problems: list[str] = []
    check(
        problems,
        args.ci_provider in PROVIDERS,
        "ci_provider",
        args.ci_provider,
        f"one of {', '.join(PROVIDERS)} on Azure",
        "set release.provider to github or none in Pulumi.<stack>.yaml",
    )
    if args.ci_provider == "github":
        check(
            problems,
            bool(args.repository),
            "repository",
            args.repository,
            "an owner/repo",
            "set release.repository in Pulumi.<stack>.yaml",
        )
        check(
            problems,
            args.ci_token_secret_uri is not None,
            "ci_token_secret_uri",
            None,
            "a Key Vault secret URI",
            "set mlops:releaseToken with --secret",
        )
    if args.private:
        check(
            problems,
            args.subnet_id is not None,
            "subnet_id",
            None,
            "a subnet id when private=True",
            "pass PrivateNetwork.functions_subnet_id (the forwarder's VNet integration)",
        )
    raise_if("EventForwarder", problems)


class EventForwarder(pulumi.ComponentResource):
    """Function App running the forwarder: consumption + Event Grid trigger (public), or
    Elastic Premium + queue trigger, VNet-integrated with no public access (private)."""

    function_id: pulumi.Output[str]
    """Resource id of the `forward` function (the Event Grid destination in public mode)."""
    queue_id: pulumi.Output[str] | None
    """Resource id of the queue Event Grid delivers to in private mode (None in public mode)."""
    app_name: pulumi.Output[str]

    def __init__(self, name: str, args: EventForwarderArgs, opts: ResourceOptions | None = None):
        validate_forwarder_args(args)
        super().__init__("mlops:azure:EventForwarder", name, None, opts)
        child = ResourceOptions(parent=self)
        plan = web.AppServicePlan(
            f"{name}-plan",
            name=f"asp-{args.prefix}-forwarder",
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="elastic" if args.private else "functionapp",
            reserved=True,
            sku=web.SkuDescriptionArgs(name="EP1", tier="ElasticPremium")
            if args.private
            else web.SkuDescriptionArgs(name="Y1", tier="Dynamic"),
            maximum_elastic_worker_count=1 if args.private else None,
            tags=args.tags,
            opts=child,
        )
        queue = None
        if args.private:
            queue = storage.Queue(
                f"{name}-queue",
                queue_name=QUEUE_NAME,
                account_name=args.storage_account_name,
                resource_group_name=args.resource_group_name,
                opts=child,
            )
        code = storage.Blob(
            f"{name}-package",
            blob_name="forwarder.zip",
            container_name="functions",
            account_name=args.storage_account_name,
            resource_group_name=args.resource_group_name,
            type="Block",
            source=package(),
            opts=child,
        )
        package_url = pulumi.Output.concat(
            "https://",
            args.storage_account_name,
            ".blob.core.windows.net/functions/",
            code.name,
        )
        token_ref: pulumi.Input[str] = ""
        if args.ci_token_secret_uri is not None:
            token_ref = pulumi.Output.concat(
                "@Microsoft.KeyVault(SecretUri=", args.ci_token_secret_uri, ")"
            )
        settings: dict[str, pulumi.Input[str]] = {
            "FUNCTIONS_EXTENSION_VERSION": "~4",
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage__accountName": args.storage_account_name,
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": args.identity_client_id,
            "WEBSITE_RUN_FROM_PACKAGE": package_url,
            "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID": args.identity_id,
            "AZURE_CLIENT_ID": args.identity_client_id,
            "MODEL_NAME": args.model_name,
            "STACK": args.stack,
            "CI_PROVIDER": args.ci_provider,
            "CI_REPOSITORY": args.repository or "",
            "CI_EVENT_TYPE": args.event_type,
            "CI_TOKEN": token_ref,
            "ML_WORKSPACE_ID": args.workspace_id,
            "RAW_CONTAINER": "raw",
            "TRAINING_JOB_DEFINITION": args.training_job,
            "FORWARDER_TRIGGER": "queue" if args.private else "eventgrid",
        }
        if args.private:
            settings.update(
                {
                    "EVENTS_QUEUE_NAME": QUEUE_NAME,
                    f"{QUEUE_CONNECTION}__queueServiceUri": pulumi.Output.concat(
                        "https://", args.storage_account_name, ".queue.core.windows.net"
                    ),
                    f"{QUEUE_CONNECTION}__credential": "managedidentity",
                    f"{QUEUE_CONNECTION}__clientId": args.identity_client_id,
                }
            )
        app = web.WebApp(
            f"{name}-app",
            name=dashed_name("func", args.prefix, args.location, 40),
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="functionapp,linux",
            server_farm_id=plan.id,
            https_only=True,
            identity=web.ManagedServiceIdentityArgs(
                type="UserAssigned", user_assigned_identities=[args.identity_id]
            ),
            key_vault_reference_identity=args.identity_id,
            public_network_access="Disabled" if args.private else None,
            virtual_network_subnet_id=args.subnet_id if args.private else None,
            outbound_vnet_routing=web.OutboundVnetRoutingArgs(all_traffic=True)
            if args.private
            else None,
            site_config=web.SiteConfigArgs(
                linux_fx_version="Python|3.11",
                min_tls_version="1.2",
                ftps_state="Disabled",
                http20_enabled=True,
                app_settings=[web.NameValuePairArgs(name=k, value=v) for k, v in settings.items()],
            ),
            tags=args.tags,
            opts=child,
        )
        self.function_id = pulumi.Output.concat(app.id, "/functions/", FUNCTION_NAME)
        self.queue_id = queue.id if queue else None
        self.app_name = app.name
        self.register_outputs({"functionId": self.function_id, "queueId": self.queue_id})
