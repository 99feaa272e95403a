"""The images of the cluster stack's charts (`CHART_IMAGES`, components/onprem/charts.py):
each is the image the pinned chart version runs by default, at that version's tag, written
through a value that chart version defines, in the form its templates turn into
`repository[:tag]@sha256:...` once a digest is recorded; a malformed pin is refused before
anything is created; the cluster plan's Helm releases carry the pins; the generated page lists
every image that still runs by tag.

The chart defaults are read from the vendored chart values (tests/schemas/upstream/helm-*,
provenance in SOURCES.json); how each chart builds a reference is quoted from its templates
at the pinned version next to the code that mirrors it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from blueprints import cluster as cluster_blueprint
from components.onprem.charts import CHART_IMAGES, CHARTS, DIGEST, ChartImage
from components.onprem.operators import ClusterOperatorsArgs, chart_values, validate
from core.config import ConfigError
from core.controls.kubernetes import DIGEST as DIGEST_CONTROL
from core.errors import ArgsError
from mlops.plan import Plan, run_plan
from tests.schemas import errors, helm_unknown_values, helm_value_paths, upstream

PlanFor = Callable[..., Plan]
HELM = "kubernetes:helm.sh/v3:Release"
# Plainly not a real image's digest: the tests check the wiring, never ship it.
FAKE = "sha256:" + "0123456789abcdef" * 4
IDS = [f"{p.chart}:{p.key}" for p in CHART_IMAGES]


def _chart_doc(pin: ChartImage) -> dict[str, Any]:
    chart = CHARTS[pin.chart]
    return upstream(f"helm-{chart.chart}-{chart.version}")


def _get(values: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        values = values[part]
    return values


def _chart_default(pin: ChartImage) -> tuple[str, str]:
    """(repository, tag) the pinned chart version renders for this image when nothing is set,
    from its vendored values.yaml, as its templates build the reference."""
    doc = _chart_doc(pin)
    values, app = doc["values"], doc.get("appVersion") or CHARTS[pin.chart].app_version
    if pin.form == "digest":
        # cert-manager _helpers.tpl `image`: repository, then `@digest` or `:(tag | appVersion)`
        image = _get(values, pin.key)
        return image["repository"], image.get("tag") or app
    if pin.form == "reference":  # kserve deployment.yaml: image: "{{ ...rbacProxyImage }}"
        repository, _, tag = _get(values, pin.key).rpartition(":")
        return repository, tag
    parent = _get(values, pin.key.rsplit(".", 1)[0])
    if pin.chart == "argo-workflows":
        # `{{ registry }}/{{ repository }}:{{ default (images.tag | appVersion) image.tag }}`
        return f"{parent['registry']}/{parent['repository']}", parent["tag"] or app
    if pin.chart == "argo-events":
        # `{{ default global.image.repository controller.image.repository }}:{{ default
        # (global.image.tag | appVersion) controller.image.tag }}`
        glob = values["global"]["image"]
        return parent["repository"] or glob["repository"], parent["tag"] or glob["tag"] or app
    # kserve: "{{ .Values.kserve.<x>.image }}:{{ .Values.kserve.<x>.tag }}"
    return parent["image"], parent["tag"]


@pytest.mark.parametrize("pin", CHART_IMAGES, ids=IDS)
def test_each_pin_is_the_image_and_tag_the_chart_version_runs(pin: ChartImage) -> None:
    """A digest belongs to one repository and tag: pinning another image's digest, or one of
    another tag than the chart renders, would run something else or fail to pull."""
    assert (pin.image.repository, pin.image.tag) == _chart_default(pin)


def test_the_charts_own_images_run_the_charts_app_version() -> None:
    third_party = {"quay.io/brancz/kube-rbac-proxy", "docker.io/seldonio/mlserver"}
    for pin in CHART_IMAGES:
        if pin.image.repository not in third_party:
            assert pin.image.tag == CHARTS[pin.chart].app_version, pin


def test_every_image_the_charts_run_with_the_kits_values_is_pinned() -> None:
    """The images the kit's values make the charts run, by chart (see the CHART_IMAGES
    docstring for those left out and why): a chart image missing here would run unpinned."""
    pinned = {(p.chart, p.image.repository.rsplit("/", 1)[1]) for p in CHART_IMAGES}
    assert pinned == {
        ("cert-manager", name)
        for name in (
            "cert-manager-controller",
            "cert-manager-webhook",
            "cert-manager-cainjector",
            "cert-manager-acmesolver",
            "cert-manager-startupapicheck",
        )
    } | {
        ("argo-workflows", "workflow-controller"),
        ("argo-workflows", "argoexec"),
        ("argo-events", "argo-events"),
        ("kserve", "kserve-controller"),
        ("kserve", "kube-rbac-proxy"),
        ("kserve", "agent"),
        ("kserve", "mlserver"),
    }
    # what the kit's values switch off, so no pin is needed for it
    values = {key: chart_values(key, "monitoring") for key in CHARTS}
    assert values["argo-workflows"]["server"]["enabled"] is False  # argocli
    assert values["argo-events"]["webhook"]["enabled"] is False
    kserve_defaults = upstream("helm-kserve-v0.15.0")["values"]["kserve"]
    assert kserve_defaults["localmodel"]["enabled"] is False
    assert "localmodel" not in values["kserve"]["kserve"]


@pytest.mark.parametrize("pin", CHART_IMAGES, ids=IDS)
def test_a_pin_is_written_through_a_value_the_chart_version_defines(pin: ChartImage) -> None:
    """The exact value, not only a map Helm passes on whole: a misspelt `digset` under
    cert-manager's `image` map would be dropped without a word, and the image run by tag."""
    doc = _chart_doc(pin)
    with_digest = replace(pin, image=replace(pin.image, digest=FAKE))
    assert helm_unknown_values(f"{doc['chart']}-{doc['version']}", with_digest.values()) == []
    if pin.form == "digest":  # cert-manager: its values.schema.json defines tag and digest
        defs = doc["schema"]["$defs"]
        assert {f"helm-values.{pin.key}.tag", f"helm-values.{pin.key}.digest"} <= set(defs)
        assert errors(doc["schema"], with_digest.values()) == []
        typo: dict[str, Any] = {"digset": FAKE}
        for part in reversed(pin.key.split(".")):
            typo = {part: typo}
        assert errors(doc["schema"], typo), "the schema catches a misspelt digest key"
    else:
        assert pin.key in set(helm_value_paths(doc["values"])) | set(doc["refs"])


@pytest.mark.parametrize("pin", CHART_IMAGES, ids=IDS)
def test_a_recorded_digest_renders_as_the_charts_template_expects(pin: ChartImage) -> None:
    pinned = replace(pin, image=replace(pin.image, digest=FAKE))
    value = _get(pinned.values(), pin.key)
    reference = pinned.reference()
    assert re.search(DIGEST_CONTROL, reference), reference  # what K8S-*-10 ask of a pod image
    if pin.form == "digest":
        # cert-manager: `{{ if .digest }}@{{ .digest }}{{ else }}:{{ tag }}`: the tag is dropped
        assert value == {"tag": pin.image.tag, "digest": FAKE}
        assert reference == f"{pin.image.repository}@{FAKE}"
    elif pin.form == "tag":
        assert value == f"{pin.image.tag}@{FAKE}"
        assert reference == f"{pin.image.repository}:{pin.image.tag}@{FAKE}"
        if pin.chart.startswith("argo"):
            # argo-helm's *_chart_version_label strips `@sha256:[a-f0-9]+` from the tag
            assert re.sub(r"@sha256:[a-f0-9]+", "", value) == pin.image.tag
    else:
        assert value == reference == f"{pin.image.repository}:{pin.image.tag}@{FAKE}"
    # without a digest each pin is the plain tag the chart would have used anyway
    assert pin.image.digest or pin.reference() == f"{pin.image.repository}:{pin.image.tag}"


def test_recorded_digests_are_index_digests_and_the_rest_are_listed_as_running_by_tag() -> None:
    for pin in CHART_IMAGES:
        assert pin.image.digest is None or DIGEST.match(pin.image.digest), pin
        assert pin.image.source, f"{pin}: say where the digest came from, or why there is none"
    page = cluster_blueprint.reference()
    for pin in CHART_IMAGES:
        ref = f"`{pin.image.repository}:{pin.image.tag}`"
        row = next(line for line in page.splitlines() if ref in line)
        assert (f"`{pin.image.digest}`" if pin.image.digest else "runs by tag") in row, row


def test_the_cluster_plans_helm_releases_carry_the_pins(plan_for: PlanFor) -> None:
    releases = {
        r.inputs["name"]: r.inputs["values"] for r in plan_for("globex-cluster").by_type(HELM)
    }
    for pin in CHART_IMAGES:
        expected = _get(pin.values(), pin.key)
        assert _get(releases[CHARTS[pin.chart].release], pin.key) == expected, pin
    # the pins sit beside the hardening, not over it
    assert releases["cert-manager"]["webhook"]["resources"]["limits"]["memory"] == "512Mi"
    assert releases["kserve"]["kserve"]["controller"]["deploymentMode"] == "RawDeployment"


def test_a_digest_given_to_the_component_reaches_the_chart_values() -> None:
    pins = tuple(replace(p, image=replace(p.image, digest=FAKE)) for p in CHART_IMAGES)
    cert = chart_values("cert-manager", "monitoring", pins)
    assert cert["image"] == {"tag": "v1.17.2", "digest": FAKE}
    assert cert["webhook"]["resources"]["limits"]["cpu"] == "500m"
    argo = chart_values("argo-workflows", "monitoring", pins)
    assert argo["executor"]["image"]["tag"] == f"v3.6.2@{FAKE}"
    assert argo["executor"]["securityContext"]["runAsNonRoot"] is True
    kserve = chart_values("kserve", "monitoring", pins)["kserve"]
    assert (
        kserve["controller"]["rbacProxyImage"] == f"quay.io/brancz/kube-rbac-proxy:v0.18.0@{FAKE}"
    )


GOOD = ClusterOperatorsArgs(
    cluster="globex",
    cluster_issuer="mlops-ca",
    issuer_secret="mlops-ca-key-pair",
    control_plane_cidr="10.0.0.0/24",
)
WEBHOOK = next(p for p in CHART_IMAGES if p.key == "webhook.image")


def _with(**image: Any) -> ChartImage:
    return replace(WEBHOOK, image=replace(WEBHOOK.image, **image))


@pytest.mark.parametrize(
    ("pins", "field", "message"),
    [
        ((_with(digest="sha256:abc"),), ".digest='sha256:abc'", "64 lowercase hex digits"),
        (
            (_with(digest="sha256:" + "AB" * 32),),
            ".digest='sha256:ABAB",
            "crane digest quay.io/jetstack/cert-manager-webhook:v1.17.2",
        ),
        ((_with(digest="sha512:" + "a" * 64),), ".digest='sha512:", "None or 'sha256:'"),
        ((_with(tag=f"v1.17.2@{FAKE}"),), ".tag='v1.17.2@sha256:", "the digest goes in"),
        ((_with(tag=""),), ".tag=''", "an image tag"),
        ((replace(WEBHOOK, chart="jetstack"),), "images[jetstack webhook.image].chart", "one of"),
        ((WEBHOOK, WEBHOOK), "images[cert-manager webhook.image].key", "one pin per chart value"),
    ],
)
def test_a_bad_pin_is_refused_naming_the_pin_the_value_and_the_fix(
    pins: tuple[ChartImage, ...], field: str, message: str
) -> None:
    with pytest.raises(ArgsError) as err:
        validate(replace(GOOD, images=pins))
    text = str(err.value)
    assert field in text and message in text, text
    assert "CHART_IMAGES (components/onprem/charts.py)" in text or "one pin" in text
    assert "nothing was created" in text


def test_the_kits_own_pins_pass_the_check() -> None:
    validate(GOOD)
    assert GOOD.images == CHART_IMAGES


def test_a_cluster_stack_pins_the_digests_it_records_in_its_config(plan_for: PlanFor) -> None:
    """`cluster.imageDigests` (the platform team's `crane digest` output) reaches the Helm
    releases through each chart's own digest value; the images it does not name stay on tag."""
    digests = {
        "quay.io/jetstack/cert-manager-controller:v1.17.2": FAKE,
        "quay.io/argoproj/argoexec:v3.6.2": FAKE,
        "quay.io/brancz/kube-rbac-proxy:v0.18.0": FAKE,
    }
    plan = plan_for("globex-cluster", **{"cluster.imageDigests": digests})
    releases = {r.inputs["name"]: r.inputs["values"] for r in plan.by_type(HELM)}
    assert releases["cert-manager"]["image"] == {"tag": "v1.17.2", "digest": FAKE}
    assert releases["cert-manager"]["webhook"]["image"] == {"tag": "v1.17.2"}
    assert releases["argo-workflows"]["executor"]["image"]["tag"] == f"v3.6.2@{FAKE}"
    assert releases["argo-workflows"]["controller"]["image"]["tag"] == "v3.6.2"
    proxy = releases["kserve"]["kserve"]["controller"]["rbacProxyImage"]
    assert proxy == f"quay.io/brancz/kube-rbac-proxy:v0.18.0@{FAKE}"
    assert plan.failed_controls == []


@pytest.mark.parametrize(
    ("digests", "error", "message"),
    [
        # an image the charts do not run, or the tag of another chart version: pins nothing
        ({"quay.io/jetstack/cert-manager-controller:v1.16.0": FAKE}, ConfigError, "no chart"),
        ({"docker.io/library/nginx:1.27": FAKE}, ConfigError, "Chart images"),
        # not an index digest, or no tag in the key
        ({"quay.io/argoproj/argoexec:v3.6.2": "sha256:abc"}, ConfigError, "imageDigests"),
        ({"quay.io/argoproj/argoexec": FAKE}, ConfigError, "imageDigests"),
    ],
)
def test_a_digest_key_or_value_that_pins_nothing_is_refused_before_any_resource(
    digests: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        run_plan("globex-cluster", overrides={"cluster.imageDigests": digests})
    text = str(raised.value)
    assert message in text and "nothing was created" in text, text
    assert next(iter(digests)) in text or "imageDigests" in text
