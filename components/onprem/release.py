"""Release trigger: an MLflow registry webhook on the approval alias, received by the
in-cluster bridge (`pipelines/services/onprem_bridge.py`) that starts the CI release."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.onprem import secrets as sec
from components.onprem.validation import Checks
from components.onprem.workload import (
    PRIVATE_RANGES,
    Peer,
    app_labels,
    container,
    http_probe,
    pod_template,
    policy_spec,
    resources,
    secret_files,
    secret_mount,
    secret_path,
    svc_host,
)

BRIDGE_PORT = 8080
PROVIDERS = ("none", "github", "azuredevops")
WEBHOOK_EVENTS = ("model_version_alias.created",)


@dataclass(frozen=True)
class ReleaseTriggerArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    namespace: str
    """Namespace of the bridge (the platform namespace, next to MLflow)."""
    image: str
    """Image with the `pipelines` package (the kit image)."""
    service_account: str
    """ServiceAccount the bridge runs as (Identities.accounts['release'])."""
    tracking_uri: str
    """MLflow tracking URI (where the webhook is registered)."""
    tracking_app: str
    """`app` label of the MLflow pods (the only senders allowed)."""
    webhook_secret: str
    """Secret with MLFLOW_WEBHOOK_SECRET (the HMAC key shared with MLflow)."""
    model_name: str
    """Registered model whose approval starts a release."""
    stack: str
    """Stack name handed to the CI workflow."""
    provider: str = "none"
    """CI system: none (log only), github or azuredevops."""
    repository: str | None = None
    """`owner/repo` (GitHub) or `organization/project` (Azure DevOps)."""
    token_secret: str | None = None
    """Secret with RELEASE_TOKEN; required unless provider is none."""
    event_type: str = "mlops-release"
    """GitHub repository_dispatch event type."""
    alias: str = "champion"
    """Registry alias that marks an approved version."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: ReleaseTriggerArgs) -> None:
    c = Checks("ReleaseTrigger")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("namespace", args.namespace, "pass Namespaces.names['platform']")
    c.expect(
        args.provider in PROVIDERS,
        "provider",
        args.provider,
        f"one of {', '.join(PROVIDERS)}",
        "set release.provider in Pulumi.<stack>.yaml",
    )
    if args.provider != "none":
        c.expect(
            bool(args.repository) and args.repository.count("/") == 1,
            "repository",
            args.repository,
            "owner/repo",
            "set release.repository in Pulumi.<stack>.yaml",
        )
        c.expect(
            args.token_secret is not None,
            "token_secret",
            args.token_secret,
            "a Secret name",
            "run `pulumi config set --secret mlops:releaseToken <token>`",
        )
    c.expect(
        args.tracking_uri.startswith(("http://", "https://")),
        "tracking_uri",
        args.tracking_uri,
        "an http(s):// URL",
        "pass Tracking.tracking_uri",
    )
    c.expect(
        bool(args.alias) and args.alias.isidentifier(),
        "alias",
        args.alias,
        "a registry alias such as champion",
        "pass the approval alias",
    )
    c.done()


class ReleaseTrigger(pulumi.ComponentResource):
    """The release bridge (Deployment + Service, reachable only from MLflow, egress only to
    public HTTPS) and a Job that registers the MLflow webhook for
    `model_version_alias.created` pointing at it, signed with the shared HMAC secret."""

    name: str
    bridge_url: str

    def __init__(
        self, name: str, args: ReleaseTriggerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:ReleaseTrigger", name, None, opts)
        ns, app = args.namespace, f"{args.prefix}-release-bridge"
        self.name = f"{args.prefix}-release"
        self.bridge_url = f"http://{svc_host(app, ns)}:{BRIDGE_PORT}/webhook"
        child = pulumi.ResourceOptions(parent=self)
        labels = app_labels(app, "release-trigger", args.labels)
        k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata={"name": f"{app}-config", "namespace": ns, "labels": labels},
            data={
                "RELEASE_PROVIDER": args.provider,
                "RELEASE_REPOSITORY": args.repository or "",
                "RELEASE_EVENT_TYPE": args.event_type,
                "RELEASE_ALIAS": args.alias,
                "RELEASE_MODEL_NAME": args.model_name,
                "RELEASE_STACK": args.stack,
                "MLFLOW_TRACKING_URI": args.tracking_uri,
                "PYTHONDONTWRITEBYTECODE": "1",
                "HOME": "/tmp",
                f"{sec.WEBHOOK_SECRET}_FILE": secret_path("webhook", sec.WEBHOOK_SECRET),
                **(
                    {f"{sec.RELEASE_TOKEN}_FILE": secret_path("release-token", sec.RELEASE_TOKEN)}
                    if args.token_secret
                    else {}
                ),
            },
            opts=child,
        )
        # credentials as read-only files; pipelines/services/onprem_bridge.py reads the paths
        # the ConfigMap gives in `*_FILE`
        volumes = [secret_files("webhook", args.webhook_secret, [sec.WEBHOOK_SECRET])]
        mounts = [secret_mount("webhook")]
        bridge_mounts, bridge_volumes = list(mounts), list(volumes)
        if args.token_secret:
            bridge_volumes.append(
                secret_files("release-token", args.token_secret, [sec.RELEASE_TOKEN])
            )
            bridge_mounts.append(secret_mount("release-token"))
        bridge = container(
            "bridge",
            args.image,
            command=["uvicorn", "pipelines.services.onprem_bridge:app"],
            args=["--host", "0.0.0.0", "--port", str(BRIDGE_PORT), "--no-server-header"],
            ports={"http": BRIDGE_PORT},
            mounts=bridge_mounts,
            config_map=f"{app}-config",
            res=resources("50m", "128Mi", cpu_limit="250m", memory_limit="256Mi"),
            readiness=http_probe("/healthz", "http", initial_delay=5),
            liveness=http_probe("/healthz", "http", initial_delay=15),
        )
        k8s.apps.v1.Deployment(
            f"{name}-bridge",
            metadata={"name": app, "namespace": ns, "labels": labels},
            spec={
                "replicas": 1,
                "selector": {"matchLabels": {"app": app}},
                "template": pod_template(
                    labels, [bridge], volumes=bridge_volumes, service_account=args.service_account
                ),
            },
            opts=child,
        )
        k8s.core.v1.Service(
            f"{name}-bridge-service",
            metadata={"name": app, "namespace": ns, "labels": labels},
            spec={
                "selector": {"app": app},
                "type": "ClusterIP",
                "ports": [{"name": "http", "port": BRIDGE_PORT, "targetPort": "http"}],
            },
            opts=child,
        )
        mlflow = Peer(namespace=ns, app=args.tracking_app)
        public_https = Peer(cidr="0.0.0.0/0", except_cidrs=PRIVATE_RANGES)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-bridge-allow",
            metadata={"name": f"{app}-allow", "namespace": ns, "labels": labels},
            spec=policy_spec(
                app, ingress=[(mlflow, [BRIDGE_PORT])], egress=[(public_https, [443])]
            ),
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-mlflow-to-bridge",
            metadata={
                "name": f"{args.tracking_app}-to-release-bridge",
                "namespace": ns,
                "labels": labels,
            },
            spec=policy_spec(
                args.tracking_app, egress=[(Peer(namespace=ns, app=app), [BRIDGE_PORT])]
            ),
            opts=child,
        )
        setup_app = f"{args.prefix}-release-webhook"
        setup_labels = app_labels(setup_app, "release-trigger", args.labels)
        register = [
            "python",
            "-m",
            "pipelines.services.onprem_bridge",
            "register",
            "--name",
            self.name,
            "--url",
            self.bridge_url,
        ]
        for event in WEBHOOK_EVENTS:
            register += ["--event", event]
        k8s.batch.v1.Job(
            f"{name}-register-webhook",
            metadata={"name": setup_app, "namespace": ns, "labels": setup_labels},
            spec={
                "backoffLimit": 10,
                "template": pod_template(
                    setup_labels,
                    [
                        container(
                            "register",
                            args.image,
                            command=register,
                            mounts=mounts,
                            config_map=f"{app}-config",
                            res=resources("50m", "256Mi", cpu_limit="250m"),
                        )
                    ],
                    volumes=volumes,
                    restart_policy="OnFailure",
                ),
            },
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-register-allow",
            metadata={"name": f"{setup_app}-allow", "namespace": ns, "labels": setup_labels},
            spec=policy_spec(setup_app, egress=[(mlflow, [5000])]),
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-mlflow-from-register",
            metadata={
                "name": f"{args.tracking_app}-from-release-webhook",
                "namespace": ns,
                "labels": setup_labels,
            },
            spec=policy_spec(
                args.tracking_app, ingress=[(Peer(namespace=ns, app=setup_app), [5000])]
            ),
            opts=child,
        )
        self.register_outputs({"name": self.name, "bridgeUrl": self.bridge_url})
