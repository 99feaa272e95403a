"""Compile the one definition to an Argo `WorkflowTemplate` (hera).

A DAG with one container template per step, each running `python -m <module>` in the kit's
image. Files move between steps as Argo artifacts (the cluster's artifact repository; the
input batch and the baseline are key-only S3 artifacts in `artifact_bucket`). The register
task runs only when the quality gate wrote `passed` = true, and writes to MLflow
(`mlflow_tracking_uri`).

Every container is restricted: non-root, no privilege escalation, all capabilities dropped,
seccomp RuntimeDefault, read-only root filesystem with an emptyDir at /tmp, and resource
requests and limits.
"""

from __future__ import annotations

from typing import Any

from pipelines.definition import (
    PARAMS,
    PIPELINE,
    PipelineSettings,
    Step,
    parameter_defaults,
    step_arguments,
)

IN, OUT = "/tmp/inputs", "/tmp/outputs"
DEFAULT_RESOURCES = {
    "processing": ("500m", "1Gi", "1", "2Gi"),
    "training": ("1", "2Gi", "2", "4Gi"),
    "register": ("250m", "512Mi", "500m", "1Gi"),
}


def _security_context() -> Any:
    from hera.workflows.models import Capabilities, SeccompProfile, SecurityContext

    return SecurityContext(
        run_as_non_root=True,
        run_as_user=1000,
        run_as_group=1000,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=Capabilities(drop=["ALL"]),
        seccomp_profile=SeccompProfile(type="RuntimeDefault"),
    )


def compile_argo(
    settings: PipelineSettings,
    *,
    namespace: str,
    image: str,
    mlflow_tracking_uri: str,
    service_account: str,
    artifact_bucket: str,
    name: str = "mlops-training",
    data_key: str = "data/",
    baseline_key: str = "accepted/baseline/",
    training_cpu: str | None = None,
    training_memory: str | None = None,
) -> dict[str, Any]:
    """The WorkflowTemplate manifest (a dict) for `settings`."""
    from hera.workflows import (
        DAG,
        Artifact,
        Container,
        EmptyDirVolume,
        Env,
        Parameter,
        RetryStrategy,
        S3Artifact,
        WorkflowTemplate,
    )
    from hera.workflows.models import (
        PodGC,
        PodSecurityContext,
        ResourceRequirements,
        SeccompProfile,
        TTLStrategy,
        VolumeMount,
    )

    problems = [
        f"{k} is empty; pass the stack's {k}"
        for k, v in (
            ("namespace", namespace),
            ("image", image),
            ("mlflow_tracking_uri", mlflow_tracking_uri),
            ("service_account", service_account),
            ("artifact_bucket", artifact_bucket),
        )
        if not v
    ]
    if problems:
        raise ValueError("cannot compile the Argo pipeline:\n  - " + "\n  - ".join(problems))

    defaults = parameter_defaults(settings, data_uri=data_key, baseline_uri=baseline_key)
    params = {p.name: f"{{{{workflow.parameters.{p.name}}}}}" for p in PARAMS}
    env = [
        Env(name="HOME", value="/tmp"),
        Env(name="MPLCONFIGDIR", value="/tmp/matplotlib"),
        Env(name="MLFLOW_TRACKING_URI", value=mlflow_tracking_uri),
        Env(name="MLOPS_PIPELINE_RUN_ID", value="{{workflow.uid}}"),
    ]

    def resources(step: Step) -> Any:
        req_cpu, req_mem, lim_cpu, lim_mem = DEFAULT_RESOURCES[step.kind]
        if step.kind == "training":
            req_cpu = lim_cpu = training_cpu or lim_cpu
            req_mem = lim_mem = training_memory or lim_mem
        return ResourceRequirements(
            requests={"cpu": req_cpu, "memory": req_mem}, limits={"cpu": lim_cpu, "memory": lim_mem}
        )

    with WorkflowTemplate(
        name=name,
        namespace=namespace,
        entrypoint="pipeline",
        service_account_name=service_account,
        labels={"app.kubernetes.io/part-of": "mlops", "mlops/environment": settings.environment},
        arguments=[
            Parameter(name=p.name, value=str(defaults[p.name]), description=p.description)
            for p in PARAMS
        ],
        volumes=[EmptyDirVolume(name="tmp", size_limit="2Gi")],
        security_context=PodSecurityContext(
            run_as_non_root=True,
            run_as_user=1000,
            run_as_group=1000,
            fs_group=1000,
            seccomp_profile=SeccompProfile(type="RuntimeDefault"),
        ),
        pod_gc=PodGC(strategy="OnPodSuccess"),
        ttl_strategy=TTLStrategy(seconds_after_completion=7 * 24 * 3600),
        active_deadline_seconds=settings.max_runtime_minutes * 60 * 3,
    ) as template:
        containers: dict[str, Any] = {}
        for step in PIPELINE:
            inputs, in_paths = [], {}
            for inp in step.inputs:
                path = f"{IN}/{inp.name}"
                in_paths[inp.name] = path
                if inp.from_param:
                    inputs.append(
                        S3Artifact(
                            name=inp.name,
                            path=path,
                            bucket=artifact_bucket,
                            key=params[inp.from_param],
                            optional=inp.optional,
                        )
                    )
                else:
                    inputs.append(Artifact(name=inp.name, path=path))
            outputs = [Artifact(name=out, path=f"{OUT}/{out}") for out in step.outputs]
            out_paths = {out: f"{OUT}/{out}" for out in step.outputs}
            out_params = []
            if step.name == "quality-gate":
                out_params.append(
                    Parameter(
                        name="passed", value_from={"path": f"{OUT}/gate/passed", "default": "false"}
                    )
                )
            containers[step.name] = Container(
                name=step.name,
                image=image,
                image_pull_policy="IfNotPresent",
                command=step.command,
                args=step_arguments(step, inputs=in_paths, outputs=out_paths, params=params),
                env=env,
                inputs=inputs,
                outputs=[*outputs, *out_params],
                security_context=_security_context(),
                resources=resources(step),
                volume_mounts=[VolumeMount(name="tmp", mount_path="/tmp")],
                retry_strategy=RetryStrategy(limit=2, retry_policy="OnError"),
            )
        with DAG(name="pipeline"):
            tasks: dict[str, Any] = {}
            for step in PIPELINE:
                arguments = [
                    tasks[inp.from_step[0]].get_artifact(inp.from_step[1]).with_name(inp.name)
                    for inp in step.inputs
                    if inp.from_step
                ]
                kwargs: dict[str, Any] = {"arguments": arguments} if arguments else {}
                if step.kind == "register":
                    kwargs["when"] = "{{tasks.quality-gate.outputs.parameters.passed}} == true"
                task = containers[step.name](name=step.name, **kwargs)
                for upstream in step.upstream:
                    tasks[upstream] >> task
                tasks[step.name] = task
    manifest = template.to_dict()
    for tpl in manifest["spec"]["templates"]:
        if "container" in tpl:  # Argo names the main container "main"; say so (k8s requires it)
            tpl["container"] = {"name": "main", **tpl["container"]}
    return manifest
