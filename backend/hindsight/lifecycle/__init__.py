"""The data lifecycle: roll-up refresh and retention, on both TimescaleDB editions.

- `edition`: which edition the server runs, and which one `hindsight migrate` set the
  schema up for (the jobs follow the schema, /health shows both).
- `rollups`: the roll-ups Hindsight refreshes itself — all of them on the apache
  edition, only the sessions roll-up on the timescale edition, where continuous
  aggregates and their policies do the rest.
- `retention`: raw events, screenshots, sessions, unreferenced images, old roll-ups.
- `jobs`: run a job in one process of a deployment at a time (advisory lock, next run
  time in the database), recorded in `lifecycle_jobs`.
- `status`: what /health shows (edition, compression, jobs, policies, freshness).

`register()` puts the jobs on a process's scheduler; see docs/operations.md.
"""

from __future__ import annotations

from .jobs import Job, JobRunner, lifecycle_jobs, register

__all__ = ["Job", "JobRunner", "lifecycle_jobs", "register"]
