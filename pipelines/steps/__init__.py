"""Step entry points: plain Python, paths and JSON in and out, no platform SDK.

Each module has `main(argv: list[str] | None = None) -> int` and runs as
``python -m pipelines.steps.<name> --<arg> PATH ...`` in a SageMaker processing or training
container, an Azure ML command job, an Argo container, or in-process on this machine.
"""
