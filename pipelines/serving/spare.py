"""A warm spare for model servers: a process that has imported what scoring needs (numpy,
scikit-learn, pyarrow, uvicorn) and forks a model server on request, so a new version serves
in the time it takes to unpickle its model instead of the seconds those imports take.

    python -m pipelines.serving.spare --exit-with-parent PID

It reads one JSON list of `model_server` arguments per line on stdin and answers
`{"pid": N}` per line on stdout; when a server it forked exits, it writes
`{"exited": N, "code": C}`. The router starts one at its own start-up and falls back to a fresh
process (`python -m pipelines.serving.model_server`) whenever the spare is not there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time

from pipelines.serving.server import exit_with_parent

WARM = (
    "numpy",
    "orjson",
    "yaml",
    "cloudpickle",
    "uvicorn",
    "uvloop",
    "httptools",
    "pyarrow.csv",
    "sklearn.base",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.linear_model",
    "uvicorn.protocols.http.httptools_impl",
    "pipelines.serving.model_server",
    "pipelines.serving.scoring",
)


def _reap(out: threading.Lock) -> None:
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            time.sleep(0.2)
            continue
        with out:
            sys.stdout.write(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}))
            sys.stdout.write("\n")
            sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pipelines.serving.spare", description=__doc__)
    parser.add_argument("--exit-with-parent", type=int, default=0, metavar="PID")
    args = parser.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if args.exit_with_parent:
        exit_with_parent(args.exit_with_parent)
    import importlib

    for module in WARM:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    from pipelines.serving import model_server

    out = threading.Lock()
    threading.Thread(target=_reap, args=(out,), name="reaper", daemon=True).start()
    with out:
        print(json.dumps({"ready": os.getpid()}), flush=True)
    spare = os.getpid()
    for line in sys.stdin:
        try:
            server_args = [str(a) for a in json.loads(line)]
        except ValueError:
            continue
        log = server_args.pop(0)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                sys.stdout = os.fdopen(1, "w", buffering=1)
                sys.stderr = os.fdopen(2, "w", buffering=1)
                code = model_server.main([*server_args, "--exit-with-parent", str(spare)])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - a forked child must never return here
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        with out:
            print(json.dumps({"pid": pid}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
