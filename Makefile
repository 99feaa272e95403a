# Two commands set everything up: `make demo` and `make test`. Both create or update .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test install lint format lock docs clean bytecode

SCAN := $(VENV)/scan

$(STAMP): pyproject.toml requirements.lock requirements-scan.lock
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required: set PY=python3.11 (make PY=python3.11 test)")'
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	@# checkov (the on-prem manifest scan) pins packaging<24 against pulumi: its own venv
	@test -x $(SCAN)/bin/python || $(BIN)/uv venv --quiet --python $(BIN)/python $(SCAN)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(SCAN)/bin/python requirements-scan.lock
	@touch $(STAMP)

install: $(STAMP)

# The kit's own modules as bytecode (an editable install gets none, and a shell that sets
# PYTHONDONTWRITEBYTECODE makes every process the demo and the tests start compile them again)
KIT := core mlops pipelines components blueprints
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 $(KIT)

demo: bytecode
	$(BIN)/mlops demo

test: bytecode
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

docs: $(STAMP)
	$(BIN)/mlops docs

# Re-resolve the pinned dependency sets after editing pyproject.toml: the development set
# (make test) and the kit image's runtime set (Dockerfile).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra image --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 -o requirements-image.lock
	$(BIN)/uv pip compile requirements-scan.in --python-version 3.11 -o requirements-scan.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mlops
