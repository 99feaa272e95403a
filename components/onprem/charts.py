"""The charts the cluster stack installs, pinned by version (`CHARTS`), and every container
image they run with the kit's values, pinned by tag and, where recorded, by digest
(`CHART_IMAGES`): the data `components.onprem.operators` installs from, kept in one place so a
refresh changes one file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from components.onprem.images import Image
from components.onprem.validation import Checks


@dataclass(frozen=True)
class Chart:
    """One Helm chart release: where it comes from, at which version, into which namespace."""

    release: str
    chart: str
    version: str
    repo: str
    namespace: str
    app_version: str


CHARTS: dict[str, Chart] = {
    "cert-manager": Chart(
        "cert-manager",
        "cert-manager",
        "v1.17.2",
        "https://charts.jetstack.io",
        "cert-manager",
        "v1.17.2",
    ),
    "prometheus-operator-crds": Chart(
        "prometheus-operator-crds",
        "prometheus-operator-crds",
        "20.0.0",
        "https://prometheus-community.github.io/helm-charts",
        "mlops-monitoring-crds",
        "v0.82.0",
    ),
    "argo-workflows": Chart(
        "argo-workflows",
        "argo-workflows",
        "0.45.4",
        "https://argoproj.github.io/argo-helm",
        "argo",
        "v3.6.2",
    ),
    "argo-events": Chart(
        "argo-events",
        "argo-events",
        "2.4.8",
        "https://argoproj.github.io/argo-helm",
        "argo-events",
        "v1.9.2",
    ),
    "kserve-crd": Chart(
        "kserve-crd", "kserve-crd", "v0.15.0", "oci://ghcr.io/kserve/charts", "kserve", "v0.15.0"
    ),
    "kserve": Chart(
        "kserve", "kserve", "v0.15.0", "oci://ghcr.io/kserve/charts", "kserve", "v0.15.0"
    ),
}
"""Every chart the cluster stack installs, pinned. Refresh a pin by changing `version` (and
`app_version`, the controller version it ships) together; `helm show chart` prints both."""

Form = Literal["digest", "tag", "reference"]


@dataclass(frozen=True)
class ChartImage:
    """One container image a pinned chart runs with the kit's values, and the chart value the
    pin is written to."""

    chart: str
    """Key of the chart in `CHARTS`."""
    component: str
    """What runs it (a Deployment, a Job, the pods a controller starts)."""
    image: Image
    """Repository as the chart names it by default, tag, digest (None: tag only), source."""
    key: str
    """Dotted path of the chart value that takes the pin."""
    form: Form
    """How that chart version takes a digest, read from its templates: `digest` -> `<key>.tag`
    and `<key>.digest` (cert-manager's `image` helper renders `repo@digest` and drops the tag);
    `tag` -> `<key>` = `tag[@digest]` (rendered `repo:tag@digest`); `reference` -> `<key>` =
    `repo:tag[@digest]`, the whole reference."""

    def values(self) -> dict[str, Any]:
        """The chart values that pin this image, nested (`{"webhook": {"image": {...}}}`)."""
        image = self.image
        if self.form == "digest":
            leaf: Any = {"tag": image.tag, **({"digest": image.digest} if image.digest else {})}
        elif self.form == "tag":
            leaf = f"{image.tag}@{image.digest}" if image.digest else image.tag
        else:
            leaf = image.ref(pin=True)
        for part in reversed(self.key.split(".")):
            leaf = {part: leaf}
        return leaf

    def reference(self) -> str:
        """The image reference the chart renders into the pod spec from these values."""
        image = self.image
        if self.form == "digest" and image.digest:
            return f"{image.repository}@{image.digest}"
        return image.ref(pin=True)


NO_DIGEST = "no public record of this tag's index digest found: tag only"


def _pin(
    chart: str,
    component: str,
    image: str,
    key: str,
    form: Form,
    digest: str | None = None,
    source: str = NO_DIGEST,
) -> ChartImage:
    """A row of `CHART_IMAGES`; `image` is `repository:tag` as the chart version names it."""
    repository, _, tag = image.rpartition(":")
    return ChartImage(chart, component, Image(repository, tag, digest, source), key, form)


CM, WF, EV, KS = "cert-manager", "argo-workflows", "argo-events", "kserve"
# fmt: off
CHART_IMAGES: tuple[ChartImage, ...] = (
    _pin(CM, "controller", "quay.io/jetstack/cert-manager-controller:v1.17.2", "image", "digest"),
    _pin(CM, "webhook", "quay.io/jetstack/cert-manager-webhook:v1.17.2", "webhook.image",
         "digest"),
    _pin(CM, "cainjector", "quay.io/jetstack/cert-manager-cainjector:v1.17.2",
         "cainjector.image", "digest"),
    _pin(CM, "acmesolver (HTTP-01 solver pods)",
         "quay.io/jetstack/cert-manager-acmesolver:v1.17.2", "acmesolver.image", "digest"),
    _pin(CM, "startupapicheck (post-install Job)",
         "quay.io/jetstack/cert-manager-startupapicheck:v1.17.2", "startupapicheck.image",
         "digest"),
    _pin(WF, "workflow-controller", "quay.io/argoproj/workflow-controller:v3.6.2",
         "controller.image.tag", "tag"),
    _pin(WF, "argoexec (init and wait containers of every workflow pod)",
         "quay.io/argoproj/argoexec:v3.6.2", "executor.image.tag", "tag"),
    _pin(EV, "controller, and the EventSource and Sensor pods it starts",
         "quay.io/argoproj/argo-events:v1.9.2", "controller.image.tag", "tag"),
    _pin(KS, "kserve-controller (manager)", "kserve/kserve-controller:v0.15.0",
         "kserve.controller.tag", "tag"),
    _pin(KS, "kube-rbac-proxy (controller metrics sidecar)",
         "quay.io/brancz/kube-rbac-proxy:v0.18.0", "kserve.controller.rbacProxyImage",
         "reference"),
    _pin(KS, "agent (request logger of InferenceServices that capture)",
         "kserve/agent:v0.15.0", "kserve.agent.tag", "tag"),
    _pin(KS, "MLServer runtime (ClusterServingRuntime kserve-mlserver: every predictor)",
         "docker.io/seldonio/mlserver:1.5.0", "kserve.servingruntime.mlserver.tag", "tag"),
)
# fmt: on
"""Every container image the pinned charts run with `chart_values`, pinned by tag (each chart's
own default at that version), and by digest where `image.digest` is set. Not listed, because
the kit's values do not run them: argo-workflows' argocli (server disabled), argo-events'
webhook (disabled), KServe's localmodel images (disabled), router (no InferenceGraph), default
storage-initializer (each client's ClusterStorageContainer runs the kit image), and the other
serving runtimes; the EventBus's NATS images come from argo-events' `configs.jetstream` for
version `latest` (nats:2.10.10 and its exporter and reloader 0.14.0), by tag.

No digest is recorded yet: no public source (release notes, SBOMs, GitOps repositories pinning
the same tag) that records the multi-arch index digest of exactly these tags was found, and a
wrong digest fails every pull, so none is guessed. One cluster records its digests in its stack
file (`cluster.imageDigests`, applied by `with_digests`); to pin one for every cluster, read the
index digest of the tag from the registry and set it as `digest` here (the `tag` stays, for
people and for the chart's version labels):

    crane digest quay.io/jetstack/cert-manager-webhook:v1.17.2
    docker buildx imagetools inspect quay.io/jetstack/cert-manager-webhook:v1.17.2

(the `Digest:` of the index, not a per-platform manifest's), note where it came from in
`source`, and run `pytest tests/onprem/test_chart_images.py`; `mlops docs` rewrites the table in
docs/blueprints/cluster.md. When a chart's `version` moves, move its images' tags to the new
chart's defaults and drop their digests in the same change."""
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def check_images(c: Checks, images: tuple[ChartImage, ...]) -> None:
    """Each pin names a chart of `CHARTS`, once per value, with a tag and, if any, a digest of
    the form `sha256:<64 lowercase hex>`: a malformed digest would fail every pull."""
    seen: set[tuple[str, str]] = set()
    fix = "correct it in CHART_IMAGES (components/onprem/charts.py)"
    for pin in images:
        where = f"images[{pin.chart} {pin.key}]"
        c.expect(
            pin.chart in CHARTS, f"{where}.chart", pin.chart, f"one of {', '.join(CHARTS)}", fix
        )
        c.expect(
            (pin.chart, pin.key) not in seen,
            f"{where}.key",
            pin.key,
            "a chart value no other pin of this chart sets",
            "keep one pin per chart value",
        )
        seen.add((pin.chart, pin.key))
        tag = pin.image.tag
        c.expect(
            bool(tag) and not re.search(r"[@:\s]", tag),
            f"{where}.tag",
            tag,
            "an image tag (no ':', '@' or spaces; the digest goes in `digest`)",
            fix,
        )
        digest = pin.image.digest
        c.expect(
            digest is None or bool(DIGEST.match(digest)),
            f"{where}.digest",
            digest,
            "None or 'sha256:' and 64 lowercase hex digits (the tag's multi-arch index digest)",
            f"read it with `crane digest {pin.image.repository}:{tag}` and {fix}",
        )


def unknown_digest_refs(
    digests: Mapping[str, str], images: tuple[ChartImage, ...] = CHART_IMAGES
) -> list[str]:
    """The keys of `digests` that name no image of these charts at the tag it runs: a digest
    under such a key would pin nothing."""
    known = {f"{p.image.repository}:{p.image.tag}" for p in images}
    return [ref for ref in digests if ref not in known]


def with_digests(
    digests: Mapping[str, str], images: tuple[ChartImage, ...] = CHART_IMAGES
) -> tuple[ChartImage, ...]:
    """`images` with the digests a cluster stack records (`cluster.imageDigests`,
    `<repository>:<tag>: sha256:...`); keys that `unknown_digest_refs` names are ignored here
    (the cluster blueprint refuses them first)."""
    return tuple(
        replace(p, image=replace(p.image, digest=digests[ref], source="cluster.imageDigests"))
        if (ref := f"{p.image.repository}:{p.image.tag}") in digests
        else p
        for p in images
    )
