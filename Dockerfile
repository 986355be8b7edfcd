# Custos as a container image: a build stage installs the package into /opt/custos with the
# same script CI checks (scripts/install.sh, via scripts/check-install.sh); the final stage
# holds that environment only, runs as an unprivileged user and answers a healthcheck.
#
#   docker build -t custos .
#   docker compose up        (compose.yaml: Custos, PostgreSQL and a mail catcher)

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY api ./api
COPY models ./models
COPY authz ./authz
COPY verifier ./verifier
COPY scripts ./scripts
RUN scripts/install.sh /opt/custos

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/custos --create-home custos \
    && install -d -o custos -g custos -m 0700 /var/lib/custos/audit-keys \
    && install -d -o custos -g custos -m 0755 /var/lib/custos/checkpoints
COPY --from=build /opt/custos /opt/custos
ENV PATH=/opt/custos/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CUSTOS_ENV=production \
    CUSTOS_LOG_FORMAT=json
USER custos
WORKDIR /var/lib/custos
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Behind a TLS-terminating proxy: --proxy-headers trusts its X-Forwarded-For.
CMD ["custos", "serve", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
