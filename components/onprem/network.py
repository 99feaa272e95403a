"""Network: TLS ingress (cert-manager certificates) for the endpoint, MLflow and registry."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.onprem.validation import Checks


@dataclass(frozen=True)
class Route:
    """One host routed to one Service over TLS."""

    name: str
    namespace: str
    host: str
    service: str
    port: int
    upstream_host: str | None = None
    """Host header the backend expects (the Knative gateway routes by it)."""
    max_body: str | None = None
    """Largest request body (`0`: unlimited, for image pushes)."""


@dataclass(frozen=True)
class TlsIngressArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    routes: Sequence[Route]
    """Hosts to expose; nothing else is reachable from outside the cluster."""
    cluster_issuer: str
    """cert-manager ClusterIssuer that signs the certificates."""
    allowed_cidrs: Sequence[str] = ()
    """Client address ranges allowed through the ingress; empty: any (dev, public mode)."""
    ingress_class: str = "nginx"
    """IngressClass of the cluster's ingress controller."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: TlsIngressArgs) -> None:
    c = Checks("TlsIngress")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label(
        "cluster_issuer", args.cluster_issuer, "set kubernetes.clusterIssuer in Pulumi.<stack>.yaml"
    )
    c.expect(
        len(args.routes) > 0,
        "routes",
        list(args.routes),
        "a non-empty list",
        "pass at least the MLflow route",
    )
    hosts = [r.host for r in args.routes]
    c.expect(
        len(hosts) == len(set(hosts)),
        "routes[].host",
        hosts,
        "unique host names",
        "give each route its own host",
    )
    for r in args.routes:
        c.dns_label("routes[].name", r.name, "use a short lowercase route name", max_len=20)
        c.expect(
            "." in r.host and all(p and p == p.lower() for p in r.host.split(".")),
            "routes[].host",
            r.host,
            "a lowercase host name with a domain",
            "set kubernetes.ingressDomain in Pulumi.<stack>.yaml",
        )
        c.expect(
            1 <= r.port <= 65535, "routes[].port", r.port, "a port number", "pass the Service port"
        )
    for cidr in args.allowed_cidrs:
        try:
            ipaddress.ip_network(cidr)
            ok = True
        except ValueError:
            ok = False
        c.expect(
            ok,
            "allowed_cidrs[]",
            cidr,
            "an address range like 10.0.0.0/16",
            "set network.cidr in Pulumi.<stack>.yaml",
        )
    c.done()


class TlsIngress(pulumi.ComponentResource):
    """For each route a cert-manager Certificate (ECDSA, rotated key) and an Ingress that
    serves only HTTPS with it, redirects HTTP, and in private mode admits only the stack's
    address range."""

    urls: dict[str, str]

    def __init__(self, name: str, args: TlsIngressArgs, opts: pulumi.ResourceOptions | None = None):
        validate(args)
        super().__init__("mlops:onprem:TlsIngress", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.urls = {}
        for r in args.routes:
            secret = f"{args.prefix}-{r.name}-tls"
            cert = k8s.apiextensions.CustomResource(
                f"{name}-{r.name}-certificate",
                api_version="cert-manager.io/v1",
                kind="Certificate",
                metadata={"name": secret, "namespace": r.namespace, "labels": args.labels},
                spec={
                    "secretName": secret,
                    "dnsNames": [r.host],
                    "issuerRef": {
                        "kind": "ClusterIssuer",
                        "name": args.cluster_issuer,
                        "group": "cert-manager.io",
                    },
                    "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                },
                opts=child,
            )
            annotations = {
                "nginx.ingress.kubernetes.io/ssl-redirect": "true",
                "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
            }
            if args.allowed_cidrs:
                annotations["nginx.ingress.kubernetes.io/whitelist-source-range"] = ",".join(
                    args.allowed_cidrs
                )
            if r.upstream_host:
                annotations["nginx.ingress.kubernetes.io/upstream-vhost"] = r.upstream_host
            if r.max_body is not None:
                annotations["nginx.ingress.kubernetes.io/proxy-body-size"] = r.max_body
            k8s.networking.v1.Ingress(
                f"{name}-{r.name}",
                metadata={
                    "name": f"{args.prefix}-{r.name}",
                    "namespace": r.namespace,
                    "labels": args.labels,
                    "annotations": annotations,
                },
                spec={
                    "ingressClassName": args.ingress_class,
                    "tls": [{"hosts": [r.host], "secretName": secret}],
                    "rules": [
                        {
                            "host": r.host,
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {
                                                "name": r.service,
                                                "port": {"number": r.port},
                                            }
                                        },
                                    }
                                ]
                            },
                        }
                    ],
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[cert]),
            )
            self.urls[r.name] = f"https://{r.host}"
        self.register_outputs({"urls": self.urls})
