"""The shared layer of an on-prem cluster, in its own stack per cluster
(`Pulumi.<owner>-cluster.yaml`, e.g. `globex-cluster`): every cluster-wide operator, CRD
and object the on-prem client stacks need, installed and owned once, so that no client stack
declares anything cluster-scoped.

What it installs, each chart pinned by version (`components/onprem/charts.py`, `CHARTS`)
into its own namespace that enforces the restricted Pod Security Standard, denies traffic by
default and carries a ResourceQuota and a LimitRange:

- cert-manager (CRDs kept on uninstall) and the CA ClusterIssuer `kubernetes.clusterIssuer`,
  signing with the key pair in the Secret `cluster.issuerSecret` (created by the platform team
  in the cert-manager namespace);
- the Prometheus Operator CRDs (`prometheus-operator-crds`), which the clients'
  ServiceMonitors and PrometheusRules need. On a cluster where kube-prometheus-stack already
  owns those CRDs, Helm refuses to adopt them: remove that release from `CHARTS` there;
- Argo Workflows and Argo Events: CRDs and one cluster-wide controller each. A client's
  WorkflowTemplates, CronWorkflows, EventBus, EventSources and Sensors live in its own
  pipelines namespace, with the artifact repository in that namespace's
  `artifact-repositories` ConfigMap;
- KServe CRDs and controller in **RawDeployment** mode.

Per client stack listed in `cluster.clients` with its ingress domain
(`components/onprem/tenants.py`): a
ClusterStorageContainer matching only that client's URI prefix (`<client>-<env>-models:/`)
and downloading from that client's MLflow, so two clients never resolve each other's models;
the training PriorityClass its workflows run at; and a ClusterRole and binding that let its CI
identity get and patch exactly its own Namespace objects. Each client's ingress domain is
registered once here (two clients on one domain is a config error), and a client whose
`kubernetes.ingressDomain` differs from its registration stops with the fix, so no host of one
client can route into another's namespaces.

Why RawDeployment and not Serverless: Serverless needs Knative Serving and a gateway (Istio or
Kourier) installed, upgraded and secured on every cluster, for scale to zero and traffic
splitting. In RawDeployment an InferenceService is a Deployment, a Service and an HPA, which
the cluster already knows how to run. What it costs: the endpoint keeps at least one replica
(dev's `endpoint.minInstances: 0` runs one), autoscaling follows CPU rather than requests, and a
new version rolls out pod by pod in steps of `rollout.trafficStepPercent` of the pods instead
of a Knative traffic split; the Prometheus rollback alerts watch it either way.

A platform team applies it with `mlops apply <owner>-cluster` (no model, so no registry is
asked) before its client stacks, and again to add a client. It needs cluster-admin, which no
CI job holds: CI's main workflow applies the dev-tier client stacks only, a pull request plans
the cluster stack offline (`mlops plan`, no credentials) when its code or stack file changes,
and `mlops chain <owner>-cluster` refuses (a cluster stack serves no model, so it has no
release chain).

Client stacks (blueprint `onprem`) name this stack in `kubernetes.clusterStack` and read its
outputs through a StackReference before creating anything; a missing output, a stack of
another blueprint, or a client missing from `cluster.clients` stops them with the fix. Add a
client by listing it in `cluster.clients` and applying this stack first. The offline plan
answers a client's StackReference with this stack's outputs, computed from its stack file.

The API server calls the operators' admission webhooks from the control-plane nodes, which no
namespace or pod selector can name: the operator namespaces admit the webhook ports from
`cluster.controlPlaneCidr` only, and the stack carries a justified suppression of K8S-NET-05
for those rules (`mlops new <owner> --blueprint cluster` writes it).

Images: every container image the charts run with the kit's values is set explicitly in the
chart values from one table (`CHART_IMAGES` in `components/onprem/charts.py`, listed under
"Chart images" below), at the tag that chart version ships, through the value that chart
version takes a digest by: cert-manager's `image.digest` and `<component>.image.digest`
(its templates then render `repository@digest`), `tag: <tag>@sha256:...` for the Argo charts
and KServe (their templates render `repository:tag@digest`, and the Argo charts strip the
digest from their version labels), and KServe's whole `rbacProxyImage` reference.

Known gaps: the kit records no digest yet, so by default the charts' images run by tag. No
public source recording the multi-arch index digest of exactly these tags (release notes,
SBOMs, GitOps repositories pinning them) was found, and a guessed digest fails every pull.
Before a production install, read each tag's index digest from the registry the cluster pulls
through (`crane digest <image>:<tag>` or `docker buildx imagetools inspect <image>:<tag>`) and
record it in the cluster stack file:

```yaml
  mlops:cluster:
    imageDigests:
      quay.io/jetstack/cert-manager-controller:v1.17.2: sha256:<64 hex>
```

The charts then pull those images by digest; a key that names no image of the table below (or
another tag) is refused before anything is created. To pin them for every cluster, set `digest`
in `CHART_IMAGES` with its source and run `tests/onprem/test_chart_images.py`. The
EventBus's NATS images (argo-events' `configs.jetstream`, version `latest`) stay tag-pinned by
the chart. The values given to all six charts are checked against the keys those chart
versions define or read, and cert-manager's also against its `values.schema.json`
(tests/schemas/test_platform_artifacts.py, tests/onprem/test_chart_images.py). The K8S-*-10
digest controls check the objects a stack declares, not the pods a chart's templates create.

Not a client stack: it has none of the contract's capabilities and exports its own outputs
(`core.contract.CLUSTER_OUTPUTS`).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.onprem import images
from components.onprem.charts import CHART_IMAGES, unknown_digest_refs, with_digests
from components.onprem.operators import (
    CHARTS,
    KSERVE_MODE,
    ClusterOperators,
    ClusterOperatorsArgs,
)
from components.onprem.tenants import ClusterTenants, ClusterTenantsArgs, tenant
from components.onprem.workload import labels_from_tags
from core.config import ConfigError, Problem, StackSettings
from core.contract import CLUSTER_BLUEPRINT, Capability

NAME = CLUSTER_BLUEPRINT
PLATFORM = "kubernetes"
TITLE = "Kubernetes cluster layer (shared by the on-prem stacks)"

CAPABILITIES: dict[Capability, str] = {}
"""None: the capabilities are the client stacks'; this stack installs what they run on."""
EVIDENCE: tuple = ()


def reference() -> str:
    """The "Chart images" section of the generated blueprint page: each image `CHART_IMAGES`
    pins, the chart value it is written to, and its digest or that it runs by tag."""
    rows = [
        "\n## Chart images\n\n",
        "Every image the pinned charts run with the kit's values (`CHART_IMAGES`, "
        "components/onprem/charts.py).\n\n",
        "| chart | runs | image | chart value | digest | source |\n|---|---|---|---|---|---|\n",
    ]
    for pin in CHART_IMAGES:
        image = pin.image
        digest = f"`{image.digest}`" if image.digest else "— (runs by tag)"
        rows.append(
            f"| {CHARTS[pin.chart].chart} {CHARTS[pin.chart].version} | {pin.component} | "
            f"`{image.repository}:{image.tag}` | `{pin.key}` | {digest} | {image.source} |\n"
        )
    return "".join(rows)


def disabled_capabilities(settings: StackSettings) -> dict[Capability, str]:
    """A cluster stack gives no capability of the contract itself: the plan reports them as
    provided by the client stacks, not as missing."""
    reason = "a cluster stack installs shared operators; its client stacks give this capability"
    return {c: reason for c in Capability}


def declared_outputs(settings: StackSettings) -> dict[str, Any]:
    """The stack outputs, from the config alone: what `build` exports, and what the offline
    plan answers a client's StackReference with."""
    kube, cluster = settings.kubernetes, settings.cluster
    return {
        "blueprint": NAME,
        "cluster": settings.client,
        "kserveVersion": CHARTS["kserve"].version,
        "kserveDeploymentMode": KSERVE_MODE,
        "argoWorkflowsVersion": CHARTS["argo-workflows"].version,
        "argoEventsVersion": CHARTS["argo-events"].version,
        "certManagerVersion": CHARTS["cert-manager"].version,
        "prometheusOperatorCrdsVersion": CHARTS["prometheus-operator-crds"].version,
        "clusterIssuer": kube.cluster_issuer,
        "ingressClass": cluster.ingress_class,
        "ingressNamespace": cluster.ingress_namespace,
        "monitoringNamespace": cluster.monitoring_namespace,
        "clients": {p: tenant(kube.namespace_prefix, p, d) for p, d in cluster.clients.items()},
    }


def refuse_unknown_digests(settings: StackSettings) -> None:
    """ConfigError naming each `cluster.imageDigests` key that is no image the charts run at
    the tag they run (a digest under it would pin nothing)."""
    unknown = unknown_digest_refs(settings.cluster.image_digests)
    known = ", ".join(f"{p.image.repository}:{p.image.tag}" for p in CHART_IMAGES)
    problems = [
        Problem(
            f"cluster.imageDigests[{ref!r}]",
            settings.cluster.image_digests[ref],
            f"is keyed by no chart image at its pinned tag (the images: {known})",
            "key each digest by an image and tag of the Chart images table in "
            "docs/blueprints/cluster.md (a chart upgrade moves the tags: read the new digests "
            "then)",
        )
        for ref in unknown
    ]
    if problems:
        raise ConfigError(settings.stack_name, problems)


def build(settings: StackSettings) -> dict[str, pulumi.Input[Any]]:
    kube, cluster = settings.kubernetes, settings.cluster
    refuse_unknown_digests(settings)  # before any resource
    chart_images = with_digests(cluster.image_digests)
    labels = labels_from_tags(settings.all_tags)
    pin = settings.environment != "dev"
    provider = k8s.Provider("cluster", context=kube.context, enable_server_side_apply=True)
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": provider})
    operators = ClusterOperators(
        "operators",
        ClusterOperatorsArgs(
            cluster=settings.client,
            cluster_issuer=kube.cluster_issuer,
            issuer_secret=cluster.issuer_secret,
            control_plane_cidr=cluster.control_plane_cidr or "",
            api_server_cidr=kube.api_server_cidr,
            monitoring_namespace=cluster.monitoring_namespace,
            labels=labels,
            images=chart_images,
        ),
        on_cluster,
    )
    ClusterTenants(
        "tenants",
        ClusterTenantsArgs(
            clients=dict(cluster.clients),
            namespace_prefix=kube.namespace_prefix,
            storage_image=settings.image or images.KIT_IMAGE.ref(pin=pin),
            labels=labels,
        ),
        pulumi.ResourceOptions(providers={"kubernetes": provider}, depends_on=[operators]),
    )
    return declared_outputs(settings)
