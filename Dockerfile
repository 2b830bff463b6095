# Meterline application image: one image, the service is chosen by the command
# (docker-compose.yml runs `meterline api`, `meterline worker`, `meterline scheduler`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install uv

WORKDIR /app

# Dependencies first, in their own layer, so code changes do not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
RUN uv sync --frozen --no-dev

RUN useradd --system --uid 10001 --home-dir /app meterline \
    && mkdir -p /data \
    && chown meterline:meterline /data

ENV PATH="/app/.venv/bin:$PATH" \
    METERLINE_DATA_DIR=/data

USER meterline
VOLUME ["/data"]

ENTRYPOINT ["meterline"]
CMD ["--help"]
