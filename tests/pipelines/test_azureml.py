"""Azure ML target: the pipeline job passes azure-ai-ml's validation, round-trips through
`load_job`, and converts to the REST body a Schedule's CreateJob action carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.definition import PIPELINE, PipelineSettings

ARM = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/"
    "Microsoft.MachineLearningServices/workspaces/ws/components/{}/versions/1"
)


@pytest.fixture(scope="module")
def compiled() -> tuple[Any, dict[str, Any]]:
    from pipelines.compilers.azureml import compile_azureml

    return compile_azureml(
        PipelineSettings(client="contoso", spot=True),
        compute="cpu-cluster",
        experiment_name="contoso-dev-training",
        environment_image="contosoacr.azurecr.io/mlops-pipeline:1",
    )


def test_job_passes_azure_ai_ml_validation(compiled: tuple[Any, dict[str, Any]]) -> None:
    job, _ = compiled
    result = job._validate()
    assert result.passed, result.error_messages


def test_job_yaml_round_trips_through_load_job(
    compiled: tuple[Any, dict[str, Any]], tmp_path: Path
) -> None:
    from azure.ai.ml import load_job
    from azure.ai.ml.entities import PipelineJob

    _, job_dict = compiled
    path = tmp_path / "pipeline_job.yaml"
    path.write_text(yaml.safe_dump(job_dict, sort_keys=False))
    loaded = load_job(path)
    assert isinstance(loaded, PipelineJob)
    assert loaded._validate().passed
    assert set(loaded.jobs) == {s.name.replace("-", "_") for s in PIPELINE}
    assert loaded.settings.default_compute == "cpu-cluster"
    again = loaded._to_dict()
    for name, node in job_dict["jobs"].items():
        assert again["jobs"][name]["component"]["command"] == node["component"]["command"]
        assert again["jobs"][name]["inputs"] == node["inputs"]


def test_commands_come_from_the_one_definition(compiled: tuple[Any, dict[str, Any]]) -> None:
    _, job_dict = compiled
    for step in PIPELINE:
        node = job_dict["jobs"][step.name.replace("-", "_")]
        command = node["component"]["command"]
        assert command.startswith(f"python -m {step.module} ")
        for out in step.outputs:
            assert f"{step.output_flag(out)} ${{{{outputs.{out}}}}}" in command
    register = job_dict["jobs"]["register"]
    assert register["inputs"]["gate"]["path"] == "${{parent.jobs.quality_gate.outputs.gate}}"
    assert job_dict["inputs"]["approval_status"] == "approved"
    assert job_dict["jobs"]["train"]["queue_settings"]["job_tier"] == "spot"


def test_rest_job_references_registered_components() -> None:
    from pipelines.compilers.azureml import azureml_component_specs, azureml_rest_job

    ids = {s.name: ARM.format("mlops_" + s.name.replace("-", "_")) for s in PIPELINE}
    rest = azureml_rest_job(
        PipelineSettings(environment="prod"),
        compute="cpu-cluster",
        experiment_name="e",
        environment_image="img:1",
        component_ids=ids,
    )
    props = rest["properties"]
    assert props["jobType"] == "Pipeline"
    assert props["settings"]["default_compute"] == "cpu-cluster"
    assert {n: j["componentId"] for n, j in props["jobs"].items()} == {
        s.name.replace("-", "_"): ids[s.name] for s in PIPELINE
    }
    assert props["inputs"]["approval_status"]["value"] == "pending"  # prod: manual approval
    specs = azureml_component_specs(PipelineSettings(), environment_image="img:1")
    assert set(specs) == {s.name for s in PIPELINE}
    assert specs["train"]["properties"]["componentSpec"]["command"].startswith(
        "python -m pipelines.steps.train"
    )


def test_missing_component_id_is_named() -> None:
    from pipelines.compilers.azureml import azureml_rest_job

    with pytest.raises(ValueError, match="component_ids lacks"):
        azureml_rest_job(
            PipelineSettings(),
            compute="c",
            experiment_name="e",
            environment_image="i",
            component_ids={"train": ARM.format("x")},
        )
