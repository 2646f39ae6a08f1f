# syntax=docker/dockerfile:1
# ald-agent image: one container per machine and color (docker-compose.prod.yml runs blue and green).
#   docker build --build-arg VERSION=1.4.2 -t ald-agent:1.4.2 .
# Stage 1 builds a virtualenv with the agent and its wheels; stage 2 copies only that venv onto a clean slim
# base, so no compiler, pip cache or source tree reaches the final image.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/ald-agent
COPY pyproject.toml README.md ./
COPY agent ./agent
# Only the agent package: the local Supabase stand-in (supalocal/) is for development, never production.
RUN /opt/ald-agent/bin/pip install --no-cache-dir . \
 && /opt/ald-agent/bin/python -m compileall -q /opt/ald-agent/lib

FROM ${PYTHON_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="ald-agent" \
      org.opencontainers.image.description="Edge agent between an ALD reactor's PLC (Modbus TCP) and Supabase" \
      org.opencontainers.image.version="${VERSION}"
ENV PATH=/opt/ald-agent/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_PORT=8000 \
    SPOOL_PATH=/var/lib/ald-agent/spool/spool.sqlite \
    LOG_FORMAT=json
RUN groupadd --system --gid 10001 ald \
 && useradd --system --uid 10001 --gid ald --home-dir /var/lib/ald-agent --no-create-home --shell /usr/sbin/nologin ald \
 && mkdir -p /var/lib/ald-agent/spool \
 && chown -R ald:ald /var/lib/ald-agent
COPY --from=build /opt/ald-agent /opt/ald-agent
WORKDIR /var/lib/ald-agent
# The spool is the source of truth until shipped (docs/DESIGN.md §9): it must outlive the container.
VOLUME ["/var/lib/ald-agent/spool"]
USER 10001:10001
EXPOSE 8000
# The image has no curl: Python itself asks /health/basic (200 = serving; 503 while starting or stopping).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request as u\ntry: sys.exit(u.urlopen('http://127.0.0.1:%s/health/basic' % os.environ.get('HTTP_PORT', '8000'), timeout=2).status != 200)\nexcept Exception: sys.exit(1)"]
STOPSIGNAL SIGTERM
# `docker run IMAGE` runs the agent; `docker run IMAGE plc read --all` reaches the rest of the CLI.
ENTRYPOINT ["python", "-m", "agent"]
CMD ["run"]
