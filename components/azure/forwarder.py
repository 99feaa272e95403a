"""Event forwarder: the small Azure Function (Linux consumption plan) that Event Grid delivers
model-registered and new-raw-data events to. Its code is `pipelines/services/azure_forwarder.py`,
packaged with a Functions v2 entry point and run from a package blob in the artifact store.

The function runs as the release identity: it reads the CI token through a Key Vault reference
(never a plain app setting), reaches its host storage with that identity (no connection string
with keys), and submits training jobs with it. HTTPS only, TLS 1.2, FTP disabled.
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
_CODE = Path(azure_forwarder.__file__).resolve()


def package() -> pulumi.AssetArchive:
    """The Function package: entry point, forwarder module, host.json, requirements.txt."""
    host = {
        "version": "2.0",
        "extensionBundle": {
            "id": "Microsoft.Azure.Functions.ExtensionBundle",
            "version": "[4.*, 5.0.0)",
        },
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
    raise_if("EventForwarder", problems)


class EventForwarder(pulumi.ComponentResource):
    """Linux consumption Function App running the Event Grid forwarder."""

    function_id: pulumi.Output[str]
    """Resource id of the `forward` function (an Event Grid destination)."""
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
            kind="functionapp",
            reserved=True,
            sku=web.SkuDescriptionArgs(name="Y1", tier="Dynamic"),
            tags=args.tags,
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
        }
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
        self.app_name = app.name
        self.register_outputs({"functionId": self.function_id})
