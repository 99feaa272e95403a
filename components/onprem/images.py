"""The container images the on-prem blueprint runs, pinned by digest.

Prod stacks run images by digest (`repo:tag@sha256:...`): a tag can be moved, a digest cannot.
Dev stacks may follow the tag (`repo:tag`) so a rebuilt image is picked up on restart.

How to refresh a pin: pick the new tag, then read its multi-arch index digest with
`crane digest <repo>:<tag>` (or `docker buildx imagetools inspect <repo>:<tag>`) and replace
`tag` and `digest` together in `PINNED`; run `pytest tests/onprem` and commit both.

The digests below were copied from public repositories that pin the same tag (the
`source` field says which tag was paired with the digest); they were not pulled from the
registries here, so verify them with `crane digest` before the first production install.

The kit's own image (pipeline steps, MLflow server with `mlflow[db]`, release bridge, drift
job) is built by this project's CI; its digest is known only after a build. It is passed to
the components as `kit_image`; see `KIT_IMAGE`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Image:
    """One container image: repository, the tag a person reads, and the pinned digest."""

    repository: str
    tag: str
    digest: str | None
    source: str = ""

    def ref(self, *, pin: bool) -> str:
        """`repo:tag@digest` when pinned (and a digest is known), else `repo:tag`."""
        if pin and self.digest:
            return f"{self.repository}:{self.tag}@{self.digest}"
        return f"{self.repository}:{self.tag}"


PINNED: dict[str, Image] = {
    "minio": Image(
        "quay.io/minio/minio",
        "RELEASE.2025-09-07T16-13-09Z",
        "sha256:14cea493d9a34af32f524e538b8346cf79f3321eff8e708c1e2960462bd8936e",
        "public pins of minio/minio:RELEASE.2025-09-07T16-13-09Z (the image ships `mc`)",
    ),
    "postgres": Image(
        "docker.io/library/postgres",
        "16.14-alpine",
        "sha256:57c72fd2a128e416c7fcc499958864df5301e940bca0a56f58fddf30ffc07777",
        "public pins of postgres:16.14-alpine",
    ),
    "registry": Image(
        "docker.io/library/registry",
        "2.8.3",
        "sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373",
        "public pins of registry:2 labelled 2.8.3",
    ),
    "vector": Image(
        "docker.io/timberio/vector",
        "0.46.1-alpine",
        "sha256:ca248fb6b6839d8a02b487a3abe3f612c8f97fe164b7a7ccbf8f795eda0d935d",
        "public pins of timberio/vector:0.46.1-alpine",
    ),
}

# Built by this project's CI from the repository (pipelines package + mlflow[db] + uvicorn).
# Set `digest` to the digest CI prints for the release, or pass a pinned reference as the
# components' `kit_image` argument.
KIT_IMAGE = Image("ghcr.io/example/mlops-pipeline", "latest", None, "built by this project's CI")


def image(name: str, *, pin: bool) -> str:
    """The reference of a pinned third-party image; `pin` is on in prod."""
    if name not in PINNED:
        raise KeyError(
            f"image {name!r} is not in PINNED; add it with a digest ({', '.join(PINNED)})"
        )
    return PINNED[name].ref(pin=pin)


def is_pinned(ref: str) -> bool:
    """True when an image reference carries a sha256 digest."""
    _, _, digest = ref.partition("@")
    return bool(_DIGEST.match(digest))
