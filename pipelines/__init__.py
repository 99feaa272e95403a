"""What runs: the pipeline definition, step code, compilers to each platform and the local runner.

Importing this package is cheap: platform SDKs are imported only inside the compiler that
needs them.
"""

from pipelines.definition import (
    PIPELINE,
    PipelineSettings,
    SettingsError,
    pipeline_settings_from_stack,
    validate_settings,
)

__all__ = [
    "PIPELINE",
    "PipelineSettings",
    "SettingsError",
    "pipeline_settings_from_stack",
    "validate_settings",
]
