"""Identities: one Kubernetes ServiceAccount per duty, RBAC limited to its namespace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.onprem.validation import Checks

# What a workflow pod's Argo executor (emissary) needs: report its outputs.
ARGO_EXECUTOR_RULES = [
    {
        "apiGroups": ["argoproj.io"],
        "resources": ["workflowtaskresults"],
        "verbs": ["create", "patch"],
    },
]


@dataclass(frozen=True)
class IdentitiesArgs:
    prefix: str
    """Start of the ServiceAccount names (`<client>-<environment>`)."""
    pipelines_namespace: str
    """Namespace the training and drift workflows run in."""
    serving_namespace: str
    """Namespace of the InferenceService."""
    platform_namespace: str
    """Namespace of the release bridge."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every ServiceAccount and Role."""


def validate(args: IdentitiesArgs) -> None:
    c = Checks("Identities")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    for f in ("pipelines_namespace", "serving_namespace", "platform_namespace"):
        c.dns_label(f, getattr(args, f), "pass a name from Namespaces.names")
    c.done()


class Identities(pulumi.ComponentResource):
    """ServiceAccounts for the pipeline, serving, release and monitoring duties. Only the
    workflow identities (pipeline, monitoring) get a token and a namespaced Role, limited to
    what the Argo executor needs; serving and release get no Kubernetes API rights."""

    pipeline: str
    serving: str
    release: str
    monitoring: str

    def __init__(self, name: str, args: IdentitiesArgs, opts: pulumi.ResourceOptions | None = None):
        validate(args)
        super().__init__("mlops:onprem:Identities", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        duties = {
            "pipeline": (args.pipelines_namespace, True),
            "monitoring": (args.pipelines_namespace, True),
            "serving": (args.serving_namespace, False),
            "release": (args.platform_namespace, False),
        }
        self.accounts: dict[str, str] = {}
        for duty, (namespace, workflow) in duties.items():
            sa_name = f"{args.prefix}-{duty}"
            self.accounts[duty] = sa_name
            k8s.core.v1.ServiceAccount(
                f"{name}-{duty}",
                metadata={"name": sa_name, "namespace": namespace, "labels": args.labels},
                automount_service_account_token=workflow,
                opts=child,
            )
        role_name = f"{args.prefix}-workflow-executor"
        k8s.rbac.v1.Role(
            f"{name}-workflow-executor",
            metadata={
                "name": role_name,
                "namespace": args.pipelines_namespace,
                "labels": args.labels,
            },
            rules=ARGO_EXECUTOR_RULES,
            opts=child,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-workflow-executor",
            metadata={
                "name": role_name,
                "namespace": args.pipelines_namespace,
                "labels": args.labels,
            },
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
            subjects=[
                {
                    "kind": "ServiceAccount",
                    "name": self.accounts[d],
                    "namespace": args.pipelines_namespace,
                }
                for d in ("pipeline", "monitoring")
            ],
            opts=child,
        )
        self.pipeline = f"{args.pipelines_namespace}/{self.accounts['pipeline']}"
        self.monitoring = f"{args.pipelines_namespace}/{self.accounts['monitoring']}"
        self.serving = f"{args.serving_namespace}/{self.accounts['serving']}"
        self.release = f"{args.platform_namespace}/{self.accounts['release']}"
        self.register_outputs(
            {
                "pipeline": self.pipeline,
                "serving": self.serving,
                "release": self.release,
                "monitoring": self.monitoring,
            }
        )
