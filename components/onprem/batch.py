"""Batch scoring: an Argo CronWorkflow that scores the artifact store's input folder with the
configured MLflow model version and writes the predictions back to the artifact store.

On `batch.cron` the workflow loads every object under `s3://<bucket>/<batch.inputPrefix>` from
MinIO (an Argo input artifact, read with the artifact store's key from its Secret), scores each
CSV file with `mlflow models predict -m models:/<model>/<version>` (the MLflow CLI in the kit
image; the model comes from the MLflow registry, whose server proxies the artifacts), and
uploads `<file>.out` for each input to `<batch.outputPrefix><workflow name>/`, so a run never
overwrites an earlier one. A file that fails to score fails the run (`set -e`): nothing is
skipped silently. No input files: the run logs it and succeeds.

The pod runs as the pipeline identity in the pipelines namespace (whose NetworkPolicy already
allows MinIO and MLflow), under the restricted security context (non-root, no privilege
escalation, every capability dropped, read-only root file system with an `emptyDir` for its
work), with CPU and memory requests and limits, and runs are never concurrent. Prod requires
the kit image pinned by digest."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.onprem import secrets as sec
from components.onprem.validation import Checks
from components.onprem.workload import container_security, pod_security, resources
from core.config import is_cron

COMPONENT = "batch-scoring"
WORK = "/work"
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9/_-]*/$")

SCORE_SCRIPT = """set -eu
mkdir -p /work/output /work/tmp
count=0
for f in $(find /work/input -type f -name '*.csv' 2>/dev/null | sort); do
  rel="${f#/work/input/}"
  mkdir -p "/work/output/$(dirname "$rel")"
  echo "scoring $rel with $MODEL_URI"
  mlflow models predict -m "$MODEL_URI" -i "$f" -o "/work/output/$rel.out" -t csv \\
    --env-manager local
  count=$((count + 1))
done
echo "scored $count file(s) from $INPUT_URI"
"""
"""Scores every CSV under /work/input into /work/output; `set -e` fails the run on the first
file that cannot be scored."""


@dataclass(frozen=True)
class BatchScoringArgs:
    prefix: str
    """Start of every object name (`<client>-<environment>`)."""
    namespace: str
    """Namespace the workflow runs in (the pipelines namespace)."""
    image: str
    """Kit image (MLflow CLI and the model's dependencies)."""
    service_account: str
    """ServiceAccount the scoring pod runs as (Identities.accounts['pipeline'])."""
    tracking_uri: str
    """MLflow tracking URI (the registry the model version is read from)."""
    model_name: str
    """Registered MLflow model name."""
    model_version: str
    """Registered model version to score with (`mlops:model`)."""
    s3_endpoint: str
    """Artifact store endpoint URL."""
    bucket: str
    """Bucket of the artifact store."""
    s3_secret: str
    """Secret (in this namespace) with the artifact store key."""
    cron: str = "0 2 * * *"
    """When batch scoring runs (5-field cron, UTC; `batch.cron`)."""
    input_prefix: str = "batch/input/"
    """Key prefix scored (`batch.inputPrefix`)."""
    output_prefix: str = "batch/output/"
    """Key prefix predictions are written under, one folder per run (`batch.outputPrefix`)."""
    cpu: str = "500m"
    """CPU request (and limit) of the scoring pod."""
    memory: str = "1Gi"
    """Memory request (and limit) of the scoring pod."""
    require_digest: bool = False
    """Refuse an image not pinned by `@sha256:` digest (prod)."""
    active_deadline_minutes: int = 120
    """A run is stopped after this many minutes."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Labels on every object."""


def validate(args: BatchScoringArgs) -> None:
    c = Checks("BatchScoring")
    c.dns_label("prefix", args.prefix, "pass `<client>-<environment>`", max_len=40)
    c.dns_label("namespace", args.namespace, "pass Namespaces.names['pipelines']")
    c.expect(
        is_cron(args.cron),
        "cron",
        args.cron,
        "a 5-field cron expression",
        "set batch.cron in Pulumi.<stack>.yaml",
    )
    c.expect(
        bool(re.fullmatch(r"[1-9]\d{0,5}", args.model_version or "")),
        "model_version",
        args.model_version,
        "a registered version number such as 4",
        "set mlops:model before batch.enabled",
    )
    c.expect(
        not args.require_digest or bool(_DIGEST.search(args.image)),
        "image",
        args.image,
        "pinned by digest (repo:tag@sha256:<64 hex>) in prod",
        "set mlops:image to the digest CI pushed",
    )
    for name, key in (("input_prefix", "inputPrefix"), ("output_prefix", "outputPrefix")):
        value = getattr(args, name)
        c.expect(
            bool(_PREFIX.match(value)),
            name,
            value,
            "a key prefix ending in '/'",
            f"set batch.{key}",
        )
    c.expect(
        not (
            args.input_prefix.startswith(args.output_prefix)
            or args.output_prefix.startswith(args.input_prefix)
        ),
        "output_prefix",
        args.output_prefix,
        f"apart from input_prefix {args.input_prefix!r}",
        "set batch.outputPrefix to another folder so outputs are not scored next run",
    )
    c.expect(
        args.tracking_uri.startswith(("http://", "https://")),
        "tracking_uri",
        args.tracking_uri,
        "an http(s) MLflow URI",
        "pass ExperimentTracking.tracking_uri",
    )
    c.expect(
        1 <= args.active_deadline_minutes <= 24 * 60,
        "active_deadline_minutes",
        args.active_deadline_minutes,
        "between 1 and 1440",
        "pass a run time limit in minutes",
    )
    c.done()


def scoring_workflow_spec(args: BatchScoringArgs) -> dict[str, Any]:
    """The `workflowSpec` of the CronWorkflow (a plain manifest fragment)."""
    model_uri = f"models:/{args.model_name}/{args.model_version}"
    s3 = {
        "bucket": args.bucket,
        "endpoint": args.s3_endpoint.split("://", 1)[1].rstrip("/"),
        "insecure": args.s3_endpoint.startswith("http://"),
        "accessKeySecret": {"name": args.s3_secret, "key": sec.S3_ACCESS_KEY},
        "secretKeySecret": {"name": args.s3_secret, "key": sec.S3_SECRET_KEY},
    }
    return {
        "entrypoint": "score",
        "serviceAccountName": args.service_account,
        "securityContext": pod_security(),
        "activeDeadlineSeconds": args.active_deadline_minutes * 60,
        "podGC": {"strategy": "OnPodSuccess"},
        "ttlStrategy": {"secondsAfterCompletion": 7 * 24 * 3600},
        "podMetadata": {"labels": {**args.labels, "mlops/component": COMPONENT}},
        "volumes": [{"name": "work", "emptyDir": {}}],
        "templates": [
            {
                "name": "score",
                "metadata": {"labels": {"mlops/model-version": args.model_version}},
                "inputs": {
                    "artifacts": [
                        {
                            "name": "input",
                            "path": f"{WORK}/input",
                            "optional": True,
                            "s3": {**s3, "key": args.input_prefix},
                        }
                    ]
                },
                "container": {
                    "name": "main",
                    "image": args.image,
                    "command": ["sh", "-c", SCORE_SCRIPT],
                    "env": [
                        {"name": "MLFLOW_TRACKING_URI", "value": args.tracking_uri},
                        {"name": "MODEL_URI", "value": model_uri},
                        {"name": "INPUT_URI", "value": f"s3://{args.bucket}/{args.input_prefix}"},
                        {"name": "HOME", "value": WORK},
                        {"name": "TMPDIR", "value": f"{WORK}/tmp"},
                    ],
                    "volumeMounts": [{"name": "work", "mountPath": WORK}],
                    "resources": resources(
                        args.cpu,
                        args.memory,
                        cpu_limit=args.cpu,
                        memory_limit=args.memory,
                    ),
                    "securityContext": container_security(),
                },
                "outputs": {
                    "artifacts": [
                        {
                            "name": "predictions",
                            "path": f"{WORK}/output",
                            "archive": {"none": {}},
                            "s3": {
                                **s3,
                                "key": f"{args.output_prefix}{{{{workflow.name}}}}/",
                            },
                        }
                    ]
                },
            }
        ],
    }


class BatchScoring(pulumi.ComponentResource):
    """CronWorkflow scoring the artifact store's input folder with the pinned MLflow version."""

    schedule_name: str
    input_uri: str
    output_uri: str

    def __init__(
        self, name: str, args: BatchScoringArgs, opts: pulumi.ResourceOptions | None = None
    ):
        validate(args)
        super().__init__("mlops:onprem:BatchScoring", name, None, opts)
        self.schedule_name = f"{args.prefix}-batch-scoring"
        self.input_uri = f"s3://{args.bucket}/{args.input_prefix}"
        self.output_uri = f"s3://{args.bucket}/{args.output_prefix}"
        k8s.apiextensions.CustomResource(
            f"{name}-schedule",
            api_version="argoproj.io/v1alpha1",
            kind="CronWorkflow",
            metadata={
                "name": self.schedule_name,
                "namespace": args.namespace,
                "labels": {
                    **args.labels,
                    "mlops/component": COMPONENT,
                    "mlops/model-version": args.model_version,
                },
            },
            spec={
                "schedules": [args.cron],
                "timezone": "UTC",
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 600,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "workflowSpec": scoring_workflow_spec(args),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "scheduleName": self.schedule_name,
                "inputUri": self.input_uri,
                "outputUri": self.output_uri,
            }
        )
