"""Rebuild argo_workflowtemplate.schema.json: the subset of Argo's published JSON schema that a
WorkflowTemplate like ours touches.

Sources:
- Argo definitions: argoproj/argo-workflows, api/jsonschema/schema.json (the v3-era file,
  stored copy id 38723959373 / commit 00762940a599500fb548a7b3d53e78140a313607), transcribed
  below with descriptions dropped; properties, types, `required` and `$ref`s kept as published.
  One deliberate change, marked with `$comment`: S3Artifact.required. That file still lists
  endpoint, bucket, accessKeySecret and secretKeySecret as required; since Argo v3.0 an input
  artifact may name only its key and take the rest from the artifact repository ("key-only
  artifacts"), which is what our template does.
- Kubernetes definitions (Container, SecurityContext, Volume, ...): copied from the strict
  v1.37 schemas that the `kubernetes-validate` package ships, so they match a current cluster.

Definitions a reference points at but that are not listed here are left out on purpose: a
manifest that starts using such a field fails validation with an unresolvable reference, and
this script is where to add it.

    python tests/pipelines/data/make_argo_schema.py
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

A = "io.argoproj.workflow.v1alpha1."
K = "io.k8s.api.core.v1."


def ref(name: str) -> dict:
    return {"$ref": f"#/definitions/{name}"}


def array(item: dict) -> dict:
    return {"type": "array", "items": item}


S, INT, B = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
STRMAP = {"type": "object", "additionalProperties": S}

ARGO = {
    A + "WorkflowTemplate": {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "apiVersion": {"type": "string", "const": "argoproj.io/v1alpha1"},
            "kind": {"type": "string", "const": "WorkflowTemplate"},
            "metadata": ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "spec": ref(A + "WorkflowTemplateSpec"),
        },
    },
    A + "WorkflowTemplateSpec": {
        "type": "object",
        "properties": {
            "activeDeadlineSeconds": INT,
            "affinity": ref(K + "Affinity"),
            "arguments": ref(A + "Arguments"),
            "artifactRepositoryRef": ref(A + "ArtifactRepositoryRef"),
            "automountServiceAccountToken": B,
            "dnsConfig": ref(K + "PodDNSConfig"),
            "dnsPolicy": S,
            "entrypoint": S,
            "executor": ref(A + "ExecutorConfig"),
            "hostAliases": array(ref(K + "HostAlias")),
            "hostNetwork": B,
            "imagePullSecrets": array(ref(K + "LocalObjectReference")),
            "metrics": ref(A + "Metrics"),
            "nodeSelector": STRMAP,
            "onExit": S,
            "parallelism": INT,
            "podDisruptionBudget": ref("io.k8s.api.policy.v1beta1.PodDisruptionBudgetSpec"),
            "podGC": ref(A + "PodGC"),
            "podPriority": INT,
            "podPriorityClassName": S,
            "podSpecPatch": S,
            "priority": INT,
            "retryStrategy": ref(A + "RetryStrategy"),
            "schedulerName": S,
            "securityContext": ref(K + "PodSecurityContext"),
            "serviceAccountName": S,
            "shutdown": S,
            "suspend": B,
            "synchronization": ref(A + "Synchronization"),
            "templates": array(ref(A + "Template")),
            "tolerations": array(ref(K + "Toleration")),
            "ttlSecondsAfterFinished": INT,
            "ttlStrategy": ref(A + "TTLStrategy"),
            "volumeClaimGC": ref(A + "VolumeClaimGC"),
            "volumeClaimTemplates": array(ref(K + "PersistentVolumeClaim")),
            "volumes": array(ref(K + "Volume")),
            "workflowMetadata": ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
            "workflowTemplateRef": ref(A + "WorkflowTemplateRef"),
        },
    },
    A + "Arguments": {
        "type": "object",
        "properties": {
            "artifacts": array(ref(A + "Artifact")),
            "parameters": array(ref(A + "Parameter")),
        },
    },
    A + "Artifact": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "archive": ref(A + "ArchiveStrategy"),
            "archiveLogs": B,
            "artifactory": ref(A + "ArtifactoryArtifact"),
            "from": S,
            "gcs": ref(A + "GCSArtifact"),
            "git": ref(A + "GitArtifact"),
            "globalName": S,
            "hdfs": ref(A + "HDFSArtifact"),
            "http": ref(A + "HTTPArtifact"),
            "mode": INT,
            "name": S,
            "optional": B,
            "oss": ref(A + "OSSArtifact"),
            "path": S,
            "raw": ref(A + "RawArtifact"),
            "recurseMode": B,
            "s3": ref(A + "S3Artifact"),
            "subPath": S,
        },
    },
    A + "S3Artifact": {
        "type": "object",
        "$comment": "published: required endpoint, bucket, accessKeySecret, secretKeySecret, "
        "key; key-only artifacts (Argo >= 3.0) take the rest from the repository",
        "required": ["key"],
        "properties": {
            "accessKeySecret": ref(K + "SecretKeySelector"),
            "bucket": S,
            "createBucketIfNotPresent": ref(A + "CreateS3BucketOptions"),
            "endpoint": S,
            "insecure": B,
            "key": S,
            "region": S,
            "roleARN": S,
            "secretKeySecret": ref(K + "SecretKeySelector"),
            "useSDKCreds": B,
        },
    },
    A + "Parameter": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "default": S,
            "enum": array(S),
            "globalName": S,
            "name": S,
            "value": S,
            "valueFrom": ref(A + "ValueFrom"),
        },
    },
    A + "ValueFrom": {
        "type": "object",
        "properties": {
            "default": S,
            "event": S,
            "jqFilter": S,
            "jsonPath": S,
            "parameter": S,
            "path": S,
            "supplied": ref(A + "SuppliedValueFrom"),
        },
    },
    A + "Template": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "activeDeadlineSeconds": ref("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
            "affinity": ref(K + "Affinity"),
            "archiveLocation": ref(A + "ArtifactLocation"),
            "arguments": ref(A + "Arguments"),
            "automountServiceAccountToken": B,
            "container": ref(K + "Container"),
            "daemon": B,
            "dag": ref(A + "DAGTemplate"),
            "executor": ref(A + "ExecutorConfig"),
            "hostAliases": array(ref(K + "HostAlias")),
            "initContainers": array(ref(A + "UserContainer")),
            "inputs": ref(A + "Inputs"),
            "memoize": ref(A + "Memoize"),
            "metadata": ref(A + "Metadata"),
            "metrics": ref(A + "Metrics"),
            "name": S,
            "nodeSelector": STRMAP,
            "outputs": ref(A + "Outputs"),
            "parallelism": INT,
            "podSpecPatch": S,
            "priority": INT,
            "priorityClassName": S,
            "resource": ref(A + "ResourceTemplate"),
            "retryStrategy": ref(A + "RetryStrategy"),
            "schedulerName": S,
            "script": ref(A + "ScriptTemplate"),
            "securityContext": ref(K + "PodSecurityContext"),
            "serviceAccountName": S,
            "sidecars": array(ref(A + "UserContainer")),
            "steps": array(ref(A + "ParallelSteps")),
            "suspend": ref(A + "SuspendTemplate"),
            "synchronization": ref(A + "Synchronization"),
            "template": S,
            "templateRef": ref(A + "TemplateRef"),
            "timeout": S,
            "tolerations": array(ref(K + "Toleration")),
            "volumes": array(ref(K + "Volume")),
        },
    },
    A + "DAGTemplate": {
        "type": "object",
        "required": ["tasks"],
        "properties": {"failFast": B, "target": S, "tasks": array(ref(A + "DAGTask"))},
    },
    A + "DAGTask": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "arguments": ref(A + "Arguments"),
            "continueOn": ref(A + "ContinueOn"),
            "dependencies": array(S),
            "depends": S,
            "name": S,
            "onExit": S,
            "template": S,
            "templateRef": ref(A + "TemplateRef"),
            "when": S,
            "withItems": array(ref(A + "Item")),
            "withParam": S,
            "withSequence": ref(A + "Sequence"),
        },
    },
    A + "Inputs": {
        "type": "object",
        "properties": {
            "artifacts": array(ref(A + "Artifact")),
            "parameters": array(ref(A + "Parameter")),
        },
    },
    A + "Outputs": {
        "type": "object",
        "properties": {
            "artifacts": array(ref(A + "Artifact")),
            "exitCode": S,
            "parameters": array(ref(A + "Parameter")),
            "result": S,
        },
    },
    A + "RetryStrategy": {
        "type": "object",
        "properties": {
            "backoff": ref(A + "Backoff"),
            "limit": ref("io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
            "retryPolicy": S,
            "scheduleOnDifferentHostNodesLabel": S,
        },
    },
    A + "PodGC": {"type": "object", "properties": {"strategy": S}},
    A + "TTLStrategy": {
        "type": "object",
        "properties": {
            "secondsAfterCompletion": INT,
            "secondsAfterFailure": INT,
            "secondsAfterSuccess": INT,
        },
    },
}

K8S = (
    "io.k8s.api.core.v1.Container",
    "io.k8s.api.core.v1.SecurityContext",
    "io.k8s.api.core.v1.Capabilities",
    "io.k8s.api.core.v1.SeccompProfile",
    "io.k8s.api.core.v1.ResourceRequirements",
    "io.k8s.api.core.v1.VolumeMount",
    "io.k8s.api.core.v1.EnvVar",
    "io.k8s.api.core.v1.PodSecurityContext",
    "io.k8s.api.core.v1.Volume",
    "io.k8s.api.core.v1.EmptyDirVolumeSource",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    "io.k8s.apimachinery.pkg.api.resource.Quantity",
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
)


def _strip(node: object) -> object:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                continue
            if key == "$ref" and isinstance(value, str):
                value = value.replace("#/$defs/", "#/definitions/")
            out[key] = _strip(value)
        return out
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def build() -> dict:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    newest = sorted(p.name for p in folder.iterdir() if p.name.endswith("-local-strict"))[-1]
    k8s = json.loads((folder / newest / "_definitions.json").read_text())["$defs"]
    definitions = dict(ARGO)
    definitions.update({name: _strip(k8s[name]) for name in K8S})
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": "Subset of argoproj/argo-workflows api/jsonschema/schema.json plus "
        f"Kubernetes {newest} definitions; rebuilt by make_argo_schema.py",
        "$ref": f"#/definitions/{A}WorkflowTemplate",
        "definitions": dict(sorted(definitions.items())),
    }


if __name__ == "__main__":
    target = Path(__file__).with_name("argo_workflowtemplate.schema.json")
    target.write_text(json.dumps(build(), indent=1, sort_keys=False) + "\n")
    print(f"wrote {target} ({target.stat().st_size // 1024} KiB)")
