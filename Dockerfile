# syntax=docker/dockerfile:1
# One image for both commands: `bot-operator` (the controller) and `bot-runtime` (every bot pod).
# Built like the README installs the project (pip installs it from pyproject.toml), without the test
# extra and without the development tools (botops_dev/ is not part of the distribution).

# A version tag, not a digest: the tag picks up Debian and CPython security fixes, a digest would need bumping by
# hand. To build reproducibly: --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest>
# (`docker buildx imagetools inspect python:3.11-slim-bookworm` prints it).
# checkov:skip=CKV_DOCKER_7:FROM is ARG PYTHON_IMAGE, a version tag (3.11-slim-bookworm) that checkov cannot resolve
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY bot_operator/ bot_operator/
COPY bot_runtime/ bot_runtime/
RUN /opt/venv/bin/pip install --no-compile . \
 && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/venv/bin/bot-operator --help >/dev/null \
 && /opt/venv/bin/bot-runtime --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tradingbot-operator" \
      org.opencontainers.image.description="Kubernetes operator and runtime for Backtrader/ccxt trading bots" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="GPL-3.0-or-later"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
COPY --from=build /opt/venv /opt/venv
# A numeric, non-root user (the pods run with runAsNonRoot and a read-only root filesystem).
USER 10001:10001
EXPOSE 8080
# For `docker run`: both commands serve /healthz on BOTOPS_HEALTH_PORT (8080); Kubernetes uses its own probes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('BOTOPS_HEALTH_PORT', '8080') + '/healthz', timeout=4)"]
ENTRYPOINT []
CMD ["bot-operator", "run"]
