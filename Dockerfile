# MoMo Guard: one image for the scorer, the trainer, the replay and the MLflow and Prefect servers
# (docker-compose.yml). Exactly the locked dependencies of uv.lock; runs as an unprivileged user.
FROM python:3.11.11-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
# The uv version the Makefile pins, so the image resolves nothing the lock file does not say.
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
# Dependencies first, in their own layer: editing the source does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3
COPY core ./core
COPY schemas ./schemas
COPY kafka_ops ./kafka_ops
COPY paysim ./paysim
COPY registry ./registry
COPY feedback ./feedback
COPY training ./training
COPY stream_app ./stream_app
COPY replay ./replay
COPY benchmarks ./benchmarks
COPY momoguard ./momoguard
RUN uv sync --frozen --no-dev --python /usr/local/bin/python3

FROM python:3.11.11-slim-bookworm
# LightGBM's wheel loads OpenMP at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 momoguard \
    && useradd --system --uid 10001 --gid momoguard --home-dir /var/lib/momoguard --no-create-home momoguard \
    && mkdir -p /var/lib/momoguard/mlflow /var/lib/momoguard/prefect /app/reports \
    && chown -R momoguard:momoguard /var/lib/momoguard /app/reports
COPY --from=build /app /app
# State lives under /var/lib/momoguard (compose mounts volumes there, owned by the user above).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/momoguard \
    MOMOGUARD_RUN_DIR=/var/lib/momoguard \
    PREFECT_HOME=/var/lib/momoguard/prefect
WORKDIR /app
USER momoguard:momoguard
EXPOSE 6066
CMD ["momoguard", "serve"]
