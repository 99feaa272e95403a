"""The local endpoint: MLflow's scoring server per model version, behind a router that shifts
traffic between versions, captures requests and responses, and exposes Prometheus metrics.

    client --> router (127.0.0.1:8080)  /ping /invocations /metrics  /-/admin ...
                 |-- model server, version 1 (MLflow pyfunc scoring app, 127.0.0.1:ephemeral)
                 '-- model server, version 2 (during a release)

The contract is SageMaker's and MLflow's: `GET /ping`, `POST /invocations` with JSON
(`instances`, `inputs`, `dataframe_split`, `dataframe_records`) or CSV, so client code is the
same on every blueprint.
"""
