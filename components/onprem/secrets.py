"""Keys and secrets: generated credentials stored as Kubernetes Secrets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.onprem.validation import Checks

# Keys inside the Secrets; consumers mount them as read-only files (workload.secret_files).
S3_ACCESS_KEY, S3_SECRET_KEY = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
MINIO_ROOT_USER, MINIO_ROOT_PASSWORD = "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"
POSTGRES_PASSWORD = "POSTGRES_PASSWORD"
WEBHOOK_SECRET = "MLFLOW_WEBHOOK_SECRET"
RELEASE_TOKEN = "RELEASE_TOKEN"


@dataclass(frozen=True)
class SecretsArgs:
    prefix: str
    """Start of every Secret name (`<client>-<environment>`)."""
    platform_namespace: str
    """Namespace of the stores, tracking server and release bridge."""
    s3_namespaces: Sequence[str]
    """Namespaces whose workloads read the artifact store (each gets a copy of the S3 key)."""
    release_token: pulumi.Input[str] | None = None
    """CI token the release bridge uses (a Pulumi secret); None: the bridge only logs."""
    external_store: str | None = None
    """Name of an external-secrets.io ClusterSecretStore to read every credential from
    (remote keys `<prefix>/<secret>`); None: generate them here (the default)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every Secret."""


def validate(args: SecretsArgs) -> None:
    c = Checks("Secrets")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("platform_namespace", args.platform_namespace, "pass Namespaces.names['platform']")
    c.expect(
        len(args.s3_namespaces) > 0,
        "s3_namespaces",
        list(args.s3_namespaces),
        "a non-empty list",
        "pass the namespaces that read the artifact store",
    )
    for ns in args.s3_namespaces:
        c.dns_label("s3_namespaces[]", ns, "pass names from Namespaces.names")
    if args.external_store is not None:
        c.dns_label(
            "external_store",
            args.external_store,
            "name an existing ClusterSecretStore or pass None",
        )
    c.done()


class Secrets(pulumi.ComponentResource):
    """Credentials generated with pulumi-random (secret in Pulumi state) and stored as
    Kubernetes Secrets; workloads mount them only as read-only files. With `external_store`
    the same Secrets are filled by External Secrets from the client's vault instead."""

    minio_root: str
    s3: str
    postgres: str
    webhook: str
    release_token: str | None
    store: str

    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None):
        validate(args)
        super().__init__("mlops:onprem:Secrets", name, None, opts)
        self._name, self._args = name, args
        self.minio_root = f"{args.prefix}-minio-root"
        self.s3 = f"{args.prefix}-s3"
        self.postgres = f"{args.prefix}-postgres"
        self.webhook = f"{args.prefix}-webhook"
        self.release_token = f"{args.prefix}-release-token" if args.release_token else None
        self.store = (
            f"external-secrets:{args.external_store}"
            if args.external_store
            else f"kubernetes-secrets:{args.platform_namespace}"
        )

        root_user = self._password("minio-root-user", 16, special=False, upper=False)
        root_pass = self._password("minio-root-password", 40)
        app_key = self._password("s3-access-key", 20, special=False, upper=False)
        app_secret = self._password("s3-secret-key", 40)
        platform = args.platform_namespace
        self._secret(
            "minio-root",
            self.minio_root,
            platform,
            {MINIO_ROOT_USER: root_user, MINIO_ROOT_PASSWORD: root_pass},
        )
        for ns in dict.fromkeys([platform, *args.s3_namespaces]):
            self._secret(
                f"s3-{ns}", self.s3, ns, {S3_ACCESS_KEY: app_key, S3_SECRET_KEY: app_secret}
            )
        self._secret(
            "postgres",
            self.postgres,
            platform,
            {POSTGRES_PASSWORD: self._password("postgres", 32, special=False)},
        )
        self._secret(
            "webhook",
            self.webhook,
            platform,
            {WEBHOOK_SECRET: self._password("webhook-hmac", 48, special=False)},
        )
        if self.release_token and args.release_token is not None:
            self._secret(
                "release-token",
                self.release_token,
                platform,
                {RELEASE_TOKEN: pulumi.Output.secret(args.release_token)},
            )
        self.register_outputs({"store": self.store})

    def _password(
        self, suffix: str, length: int, *, special: bool = True, upper: bool = True
    ) -> pulumi.Output[str] | None:
        if self._args.external_store:
            return None
        return random.RandomPassword(
            f"{self._name}-{suffix}",
            length=length,
            special=special,
            upper=upper,
            override_special="-_" if special else None,
            opts=pulumi.ResourceOptions(parent=self),
        ).result

    def _secret(
        self,
        suffix: str,
        secret_name: str,
        namespace: str,
        data: Mapping[str, pulumi.Input[str] | None],
    ) -> None:
        meta = {"name": secret_name, "namespace": namespace, "labels": self._args.labels}
        opts = pulumi.ResourceOptions(parent=self)
        store = self._args.external_store
        if store and suffix != "release-token":
            k8s.apiextensions.CustomResource(
                f"{self._name}-{suffix}",
                api_version="external-secrets.io/v1beta1",
                kind="ExternalSecret",
                metadata=meta,
                spec={
                    "refreshInterval": "1h",
                    "secretStoreRef": {"kind": "ClusterSecretStore", "name": store},
                    "target": {"name": secret_name, "creationPolicy": "Owner"},
                    "data": [
                        {
                            "secretKey": key,
                            "remoteRef": {
                                "key": f"{self._args.prefix}/{secret_name}",
                                "property": key,
                            },
                        }
                        for key in data
                    ],
                },
                opts=opts,
            )
            return
        k8s.core.v1.Secret(
            f"{self._name}-{suffix}",
            metadata=meta,
            type="Opaque",
            string_data={k: pulumi.Output.secret(v) for k, v in data.items()},
            opts=opts,
        )
