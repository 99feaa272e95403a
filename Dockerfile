# The kit image: every pipeline step (`python -m pipelines.steps.<step>`), SageMaker's serving
# contract (`serve`: MLflow pyfunc on 0.0.0.0:8080), the on-prem release bridge and MLflow
# server, and the Azure ML register step (azureml-mlflow). CI builds it, pushes it to the
# stack's registry and pins its digest into `mlops:image` (prod requires the digest).
#
#   docker build -t <registry>/<repository>:<version> .
#
# Pin the base by digest in your fork (`docker buildx imagetools inspect python:3.11-slim`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MPLBACKEND=Agg

RUN groupadd --gid 10001 kit \
 && useradd --uid 10001 --gid kit --create-home --shell /usr/sbin/nologin kit

WORKDIR /opt/kit
# Runtime dependencies only (no test tools), from the pinned image lock.
COPY requirements-image.lock ./
RUN python -m pip install --no-cache-dir uv \
 && uv pip install --system --no-cache -r requirements-image.lock

COPY pyproject.toml README.md ./
COPY mlops ./mlops
COPY blueprints ./blueprints
COPY components ./components
COPY pipelines ./pipelines
RUN uv pip install --system --no-cache --no-deps . \
 && python -c "import pipelines.steps.validate, pipelines.serving.model_server"

COPY docker/serve /usr/local/bin/serve

# Non-root, and nothing written outside /tmp (the Kubernetes workloads mount it as emptyDir
# and run with a read-only root filesystem).
USER 10001:10001
ENV HOME=/tmp
EXPOSE 8080
CMD ["serve"]
