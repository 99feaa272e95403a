"""Building blocks every on-prem workload shares: labels, the hardened pod and container
security context, probes, resources and NetworkPolicy peers.

Not a component: plain functions returning manifest fragments (camelCase, as the API takes
them), so each component reads like the manifest it declares.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PART_OF = "mlops"
DEFAULT_UID = 10001
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]")
_LABEL_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def labels_from_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Stack tags as valid Kubernetes labels: `mlops:client` becomes `mlops/client`."""
    out: dict[str, str] = {}
    for key, value in tags.items():
        prefix, sep, name = key.partition(":")
        key = f"{prefix.lower()}/{_LABEL_NAME.sub('-', name)}" if sep else _LABEL_NAME.sub("-", key)
        out[key] = _LABEL_VALUE.sub("-", str(value))[:63].strip("-_.") or "none"
    return out


def app_labels(app: str, component: str, base: Mapping[str, str]) -> dict[str, str]:
    """Labels of a workload. `app` selects its pods; `app` and `mlops/component` are dot-free
    so control property paths can address them."""
    return {
        **base,
        "app": app,
        "mlops/component": component,
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def container_security(uid: int = DEFAULT_UID, *, read_only_root: bool = True) -> dict[str, Any]:
    """Non-root, no privilege escalation, every capability dropped, RuntimeDefault seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(uid: int = DEFAULT_UID) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def http_probe(
    path: str, port: int | str, *, host: str | None = None, initial_delay: int = 10
) -> dict[str, Any]:
    get: dict[str, Any] = {"path": path, "port": port}
    if host:
        get["httpHeaders"] = [{"name": "Host", "value": host}]
    return {
        "httpGet": get,
        "initialDelaySeconds": initial_delay,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": 6,
    }


def exec_probe(command: Sequence[str], *, initial_delay: int = 10) -> dict[str, Any]:
    return {
        "exec": {"command": list(command)},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": 10,
        "timeoutSeconds": 5,
        "failureThreshold": 6,
    }


def resources(
    cpu: str, memory: str, *, cpu_limit: str | None = None, memory_limit: str | None = None
) -> dict[str, Any]:
    """Requests and limits; memory is guaranteed (limit = request unless given)."""
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit or cpu, "memory": memory_limit or memory},
    }


SECRETS_ROOT = "/run/secrets"
"""Where Secrets are mounted as files: `<SECRETS_ROOT>/<volume>/<key>`."""
SECRET_FILE_MODE = 0o440
"""Read-only for the owner and the pod's fsGroup (which kubelet makes the files' group)."""


def secret_files(volume: str, secret: str, keys: Sequence[str]) -> dict[str, Any]:
    """A pod volume exposing the listed keys of a Secret as read-only files named after them."""
    return {
        "name": volume,
        "secret": {
            "secretName": secret,
            "items": [{"key": k, "path": k} for k in keys],
            "defaultMode": SECRET_FILE_MODE,
        },
    }


def secret_mount(volume: str) -> dict[str, Any]:
    """The read-only mount of a `secret_files` volume at `<SECRETS_ROOT>/<volume>`."""
    return {"name": volume, "mountPath": f"{SECRETS_ROOT}/{volume}", "readOnly": True}


def secret_path(volume: str, key: str) -> str:
    """The file a `secret_files` volume holds `key` in."""
    return f"{SECRETS_ROOT}/{volume}/{key}"


def secret_env(name: str, secret: str, key: str, *, optional: bool = False) -> dict[str, Any]:
    """An environment variable read from a Secret (never a literal value). No kit workload uses
    it any more: prefer `secret_files` (checkov's CKV_K8S_35 fails a secret in the environment,
    where `kubectl describe`, crash dumps and child processes see it)."""
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def container(
    name: str,
    image: str,
    *,
    res: dict[str, Any],
    args: Sequence[str] | None = None,
    command: Sequence[str] | None = None,
    ports: Mapping[str, int] | None = None,
    env: Sequence[Mapping[str, Any]] = (),
    config_map: str | None = None,
    mounts: Sequence[Mapping[str, Any]] = (),
    readiness: Mapping[str, Any] | None = None,
    liveness: Mapping[str, Any] | None = None,
    uid: int = DEFAULT_UID,
) -> dict[str, Any]:
    """A hardened container: configuration from a ConfigMap, credentials from Secrets."""
    spec: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "securityContext": container_security(uid),
        "resources": res,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *mounts],
    }
    if command:
        spec["command"] = list(command)
    if args:
        spec["args"] = list(args)
    if ports:
        spec["ports"] = [
            {"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports.items()
        ]
    if env:
        spec["env"] = [dict(e) for e in env]
    if config_map:
        spec["envFrom"] = [{"configMapRef": {"name": config_map}}]
    if readiness:
        spec["readinessProbe"] = dict(readiness)
    if liveness:
        spec["livenessProbe"] = dict(liveness)
    return spec


def pod_template(
    labels: Mapping[str, str],
    containers: Sequence[Mapping[str, Any]],
    *,
    volumes: Sequence[Mapping[str, Any]] = (),
    service_account: str | None = None,
    mount_token: bool = False,
    uid: int = DEFAULT_UID,
    restart_policy: str | None = None,
    priority_class: str | None = None,
) -> dict[str, Any]:
    """A pod template with the hardened pod security context and an emptyDir `/tmp`."""
    spec: dict[str, Any] = {
        "automountServiceAccountToken": mount_token,
        "securityContext": pod_security(uid),
        "containers": [dict(c) for c in containers],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}, *volumes],
        "enableServiceLinks": False,
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    if priority_class:
        spec["priorityClassName"] = priority_class
    return {"metadata": {"labels": dict(labels)}, "spec": spec}


@dataclass(frozen=True)
class Peer:
    """One side of an allowed flow: pods (by `app` label) in a namespace, or an address range."""

    namespace: str | None = None
    """Namespace of the peer pods; None with app=None and cidr=None is not allowed."""
    app: str | None = None
    """`app` label of the peer pods; None means every pod of the namespace."""
    cidr: str | None = None
    """Address range (for endpoints outside the cluster)."""
    except_cidrs: tuple[str, ...] = ()
    """Ranges carved out of `cidr`."""
    match: tuple[tuple[str, str], ...] = ()
    """Extra pod labels to match (for pods we do not label ourselves, e.g. kube-dns)."""

    def as_dict(self) -> dict[str, Any]:
        if self.cidr:
            block: dict[str, Any] = {"cidr": self.cidr}
            if self.except_cidrs:
                block["except"] = list(self.except_cidrs)
            return {"ipBlock": block}
        peer: dict[str, Any] = {}
        if self.namespace:
            peer["namespaceSelector"] = {
                "matchLabels": {"kubernetes.io/metadata.name": self.namespace}
            }
        pod_labels = dict(self.match)
        if self.app:
            pod_labels["app"] = self.app
        if pod_labels:
            peer["podSelector"] = {"matchLabels": pod_labels}
        elif not self.namespace:
            raise ValueError("a Peer needs a namespace, an app or a cidr")
        return peer


PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
KUBE_DNS = Peer(namespace="kube-system", match=(("k8s-app", "kube-dns"),))
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def policy_spec(
    app: str,
    *,
    ingress: Sequence[tuple[Peer, Sequence[int]]] = (),
    egress: Sequence[tuple[Peer, Sequence[int]]] = (),
) -> dict[str, Any]:
    """A NetworkPolicy spec allowing exactly the listed flows to and from the `app` pods."""

    def rules(flows: Sequence[tuple[Peer, Sequence[int]]], side: str) -> list[dict[str, Any]]:
        return [
            {side: [peer.as_dict()], "ports": [{"protocol": "TCP", "port": p} for p in ports]}
            for peer, ports in flows
        ]

    types = [t for t, flows in (("Ingress", ingress), ("Egress", egress)) if flows]
    spec: dict[str, Any] = {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": types}
    if ingress:
        spec["ingress"] = rules(ingress, "from")
    if egress:
        spec["egress"] = rules(egress, "to")
    return spec


def svc_host(service: str, namespace: str) -> str:
    return f"{service}.{namespace}.svc.cluster.local"
