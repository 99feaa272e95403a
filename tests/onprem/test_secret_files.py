"""On-prem credentials reach workloads as read-only files of mounted Secrets, never as
environment variables (issue #13): MinIO and its setup job, MLflow, the capture sink, the
release bridge and its webhook job. Each program reads the files: MinIO through its
`MINIO_ROOT_*_FILE` convention, `mc` and MLflow through an `sh` entry point, Vector through its
directory secret backend, the bridge through `*_FILE` in its config."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.onprem import secrets as sec
from components.onprem.artifact_store import setup_script
from components.onprem.tracking import mlflow_entrypoint
from components.onprem.workload import SECRET_FILE_MODE, SECRETS_ROOT
from pipelines.services.onprem_bridge import BridgeConfig, read_secret
from tests.conftest import get_plan

WORKLOADS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:apps/v1:DaemonSet",
)
FIXED = ("-minio", "-minio-setup", "-mlflow", "-capture", "-release-bridge", "-release-webhook")


def pods(stack: str) -> dict[str, dict[str, Any]]:
    """Pod spec per workload (by object name) of a stack's plan."""
    return {
        r.inputs["metadata"]["name"]: r.inputs["spec"]["template"]["spec"]
        for t in WORKLOADS
        for r in get_plan(stack).by_type(t)
    }


def config_maps(stack: str) -> dict[str, dict[str, str]]:
    return {
        r.inputs["metadata"]["name"]: r.inputs.get("data") or {}
        for r in get_plan(stack).by_type("kubernetes:core/v1:ConfigMap")
    }


@pytest.mark.parametrize("stack", ["globex-dev", "globex-prod"])
def test_no_workload_takes_a_secret_from_its_environment(stack: str) -> None:
    found = pods(stack)
    expected = FIXED if stack.endswith("-prod") else tuple(f for f in FIXED if f != "-capture")
    assert all(any(n.endswith(s) for n in found) for s in expected), sorted(found)
    for name, pod in found.items():
        for c in pod.get("initContainers", []) + pod["containers"]:
            refs = [e["name"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
            assert not refs, f"{name}/{c['name']} reads {refs} from the environment"


@pytest.mark.parametrize("stack", ["globex-dev", "globex-prod"])
def test_each_file_a_workload_is_told_to_read_is_a_read_only_secret_key(stack: str) -> None:
    """Every `*_FILE` a container gets from its ConfigMap names a key of a Secret volume
    mounted read-only at that folder, with mode 0440 and the pod's fsGroup."""
    maps, checked = config_maps(stack), set()
    for name, pod in pods(stack).items():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            env = {
                k: v
                for ref in c.get("envFrom", [])
                for k, v in maps[ref["configMapRef"]["name"]].items()
            }
            for key, path in env.items():
                if not key.endswith("_FILE") or not path.startswith(SECRETS_ROOT + "/"):
                    continue
                if key == "RELEASE_TOKEN_FILE" and name.endswith("-release-webhook"):
                    continue  # shares the bridge's ConfigMap; the register job never reads it
                folder, file = path.rsplit("/", 1)
                mount = next((m for m in c["volumeMounts"] if m["mountPath"] == folder), None)
                assert mount, f"{name}: {key}={path} is not under a mount"
                assert mount["readOnly"] is True, f"{name}: {folder} is writable"
                secret = volumes[mount["name"]]["secret"]
                assert file in [i["path"] for i in secret["items"]], (name, key)
                assert secret["defaultMode"] == SECRET_FILE_MODE == 0o440
                assert pod["securityContext"]["fsGroup"] > 0
                checked.add((name.split("-", 2)[-1], key))
    assert {
        ("minio", "MINIO_ROOT_USER_FILE"),
        ("minio", "MINIO_ROOT_PASSWORD_FILE"),
        ("release-bridge", "MLFLOW_WEBHOOK_SECRET_FILE"),
        ("release-webhook", "MLFLOW_WEBHOOK_SECRET_FILE"),
    } <= checked, checked


def _fake(bin_dir: Path, name: str) -> None:
    """A program that logs its argv and the credential variables it was started with."""
    tool = bin_dir / name
    tool.write_text(
        "#!/bin/sh\n"
        f'echo "{name} $*" >> "$LOG"\n'
        "for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY MLFLOW_BACKEND_STORE_URI; do\n"
        '  eval "val=\\${$v-}"; [ -n "$val" ] && echo "$v=$val" >> "$LOG"\n'
        "done\n"
        "exit 0\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


def _secrets(root: Path, folder: str, values: dict[str, str]) -> None:
    (root / folder).mkdir(parents=True)
    for key, value in values.items():
        (root / folder / key).write_text(value + "\n")  # kubelet keeps the bytes as stored


def _run(script: str, root: Path, *args: str) -> list[str]:
    bin_dir, log = root / "bin", root / "log"
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LOG": str(log)}
    script = script.replace(SECRETS_ROOT, str(root / "secrets"))
    subprocess.run(["/bin/sh", "-c", script, "prog", *args], env=env, check=True, timeout=20)
    return log.read_text().splitlines()


def test_mlflow_starts_with_credentials_read_from_the_files(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    _fake(tmp_path / "bin", "mlflow")
    _secrets(tmp_path / "secrets", "postgres", {sec.POSTGRES_PASSWORD: "pgpass123"})
    _secrets(
        tmp_path / "secrets", "s3", {sec.S3_ACCESS_KEY: "app-key", sec.S3_SECRET_KEY: "app-secret"}
    )
    script = mlflow_entrypoint("db.platform.svc.cluster.local")
    assert "pgpass" not in script and "$(cat" in script
    log = _run(script, tmp_path, "--port", "5000")
    assert log[0] == "mlflow server --port 5000"
    assert set(log[1:]) == {
        "AWS_ACCESS_KEY_ID=app-key",
        "AWS_SECRET_ACCESS_KEY=app-secret",
        "MLFLOW_BACKEND_STORE_URI=postgresql://mlflow:pgpass123@db.platform.svc.cluster.local:"
        "5432/mlflow",
    }


def test_mlflow_fails_to_start_without_its_files(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    _fake(tmp_path / "bin", "mlflow")
    with pytest.raises(subprocess.CalledProcessError):
        _run(mlflow_entrypoint("db"), tmp_path)
    assert not (tmp_path / "log").exists(), "mlflow must not start with empty credentials"


def test_minio_setup_reads_root_and_app_credentials_from_files(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    _fake(tmp_path / "bin", "mc")
    _secrets(
        tmp_path / "secrets",
        "minio-root",
        {sec.MINIO_ROOT_USER: "root", sec.MINIO_ROOT_PASSWORD: "rootpw"},
    )
    _secrets(
        tmp_path / "secrets", "s3", {sec.S3_ACCESS_KEY: "app-key", sec.S3_SECRET_KEY: "app-secret"}
    )
    script = setup_script("http://minio:9000", "globex-prod", "globex-prod-bucket", 90)
    calls = [line for line in _run(script, tmp_path) if line.startswith("mc ")]
    assert calls[0] == "mc alias set local http://minio:9000 root rootpw"
    assert "mc admin user add local app-key app-secret" in calls
    assert "mc admin policy attach local globex-prod-bucket --user app-key" in calls


def test_vector_reads_the_s3_keys_through_its_directory_backend() -> None:
    capture = next(r for n, r in pods("globex-prod").items() if n.endswith("-capture"))
    config_name = next(v["configMap"]["name"] for v in capture["volumes"] if "configMap" in v)
    config = yaml.safe_load(config_maps("globex-prod")[config_name]["vector.yaml"])
    backend = config["secret"]["s3"]
    assert backend["type"] == "directory"
    mount = next(m for m in capture["containers"][0]["volumeMounts"] if m["name"] == "s3")
    assert backend["path"] == mount["mountPath"] and mount["readOnly"] is True
    volume = next(v for v in capture["volumes"] if v["name"] == "s3")
    keys = [i["key"] for i in volume["secret"]["items"]]
    (sink,) = config["sinks"].values()
    assert sink["auth"] == {
        "access_key_id": f"SECRET[s3.{keys[0]}]",
        "secret_access_key": f"SECRET[s3.{keys[1]}]",
    }


def test_bridge_reads_its_credentials_from_files(tmp_path: Path) -> None:
    (tmp_path / "hmac").write_text("s3cr3t\n")
    (tmp_path / "token").write_text("ghp_x\n")
    config = BridgeConfig.from_env(
        {
            "MLFLOW_WEBHOOK_SECRET_FILE": str(tmp_path / "hmac"),
            "RELEASE_TOKEN_FILE": str(tmp_path / "token"),
            "RELEASE_PROVIDER": "github",
            "RELEASE_REPOSITORY": "globex/ml",
        }
    )
    assert (config.webhook_secret, config.token) == ("s3cr3t", "ghp_x")
    assert read_secret({"RELEASE_TOKEN": "plain"}, "RELEASE_TOKEN") == "plain"  # local runs


def test_bridge_refuses_a_file_it_cannot_read(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"MLFLOW_WEBHOOK_SECRET_FILE='.*nope' cannot be read"):
        BridgeConfig.from_env({"MLFLOW_WEBHOOK_SECRET_FILE": missing})
