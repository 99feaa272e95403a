"""The local MLOps loop around the pipeline: release to the local endpoint, live traffic,
monitoring (drift and endpoint metrics), the report, and the demo that runs them in order."""
