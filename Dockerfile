# syntax=docker/dockerfile:1
# One image for both commands: `bot-operator` (the controller) and `bot-runtime` (every bot pod).
# Built like the README installs the project (pip installs it from pyproject.toml), without the test
# extra and without the development tools (botops_dev/ is not part of the distribution).

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
ENTRYPOINT []
CMD ["bot-operator", "run"]
