"""The local endpoint: the kit's lean model server per model version (worker processes on one
port), behind a router that shifts traffic between versions, captures requests and responses,
and exposes Prometheus metrics.

    client --> router (127.0.0.1:8080)  /ping /version /invocations /v2/... /metrics  /-/admin
                 |-- model server, version 1 (scoring.py on uvicorn, 127.0.0.1:ephemeral)
                 '-- model server, version 2 (during a release, forked from a warm spare)

The contract is SageMaker's and MLflow's (`GET /ping`, `POST /invocations` with JSON
`instances`, `inputs`, `dataframe_split`, `dataframe_records`, or CSV) plus the Open Inference
Protocol v2 of KServe and MLServer, so client code is the same on every blueprint.
"""
