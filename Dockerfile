# The Hindsight API image. The same steps as `make run` (scripts/bootstrap.sh, then
# `hindsight dev`), minus the embedded database, which docker-compose.yml provides:
#   1. build tracker.js:           npm ci && npm run build   (in tracker/, and the replayer in dashboard/)
#   2. install Hindsight:          pip install -e .          (setup.cfg pins every dependency)
#   3. on start:                   hindsight migrate && hindsight serve
# Settings come from the environment (README.md, "Settings").

FROM node:20-bookworm-slim AS tracker
WORKDIR /src/tracker
COPY tracker/package.json tracker/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tracker/ ./
RUN npm run --silent build

FROM node:20-bookworm-slim AS dashboard
WORKDIR /src/dashboard
COPY dashboard/package.json dashboard/package-lock.json dashboard/build.mjs ./
RUN npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# psql, pg_dump and pg_restore (PostgreSQL 15, as the server) for scripts/backup.sh,
# scripts/restore.sh and sql/maintenance/ from inside the container.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first (a layer that survives code changes), then the code.
COPY setup.cfg pyproject.toml README.md ./
COPY backend/hindsight/__init__.py backend/hindsight/__init__.py
RUN pip install -e .
COPY . .
COPY --from=tracker /src/tracker/dist tracker/dist
COPY --from=dashboard /src/dashboard/static/dist dashboard/static/dist
RUN useradd --system --uid 10001 --home-dir /app hindsight
USER hindsight
ENV HINDSIGHT_BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
# migrate is safe with several API containers starting at once (advisory lock);
# exec: gunicorn is PID 1 and gets `docker stop`'s SIGTERM (in-flight requests finish).
CMD ["sh", "-c", "hindsight migrate && exec hindsight serve"]
