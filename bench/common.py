"""What every benchmark starts and reports: its own throw-away cluster and the machine."""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path


def start_cluster(*, durable: bool, extra_args: str = ""):
    """A throw-away TimescaleDB cluster (testing.postgresql).

    `durable`: fsync and synchronous_commit on, as in production (write benchmarks);
    otherwise fsync off (-F), for read benchmarks that only need their data loaded fast.
    """
    import testing.postgresql

    from hindsight.pgcluster import SERVER_OPTIONS, binaries

    bins = binaries(Path(tempfile.mkdtemp(prefix="hindsight-bench-pgbin-")))
    # testing.postgresql's default arguments include -F (fsync off); durable ones do not.
    base = ("-h 127.0.0.1 -c logging_collector=off -c fsync=on -c synchronous_commit=on"
            if durable else "-h 127.0.0.1 -F -c logging_collector=off")
    args = " ".join(part for part in (base, extra_args, " ".join(SERVER_OPTIONS)) if part)
    return testing.postgresql.Postgresql(initdb=bins.initdb, postgres=bins.postgres, postgres_args=args)


# Read benchmarks load millions of rows first: fewer checkpoints while they do.
BULK_LOAD_ARGS = "-c max_wal_size=8GB -c checkpoint_timeout=30min"


def on_read_cluster(run, *args):
    """Start a throw-away read-benchmark cluster (fsync off, bulk-load settings), migrate it,
    return `run(url, *args)` and stop the cluster, whatever happens."""
    from hindsight.migrate import migrate

    cluster = start_cluster(durable=False, extra_args=BULK_LOAD_ARGS)
    try:
        url = cluster.url()
        migrate(url)
        return run(url, *args)
    finally:
        cluster.stop()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine(*, python: bool = False) -> str:
    """Cores, CPU, memory and kernel (and Python), for a benchmark's report."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    text = f"{os.cpu_count()} cores ({cpu_model()}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}"
    return text + (f", Python {platform.python_version()}" if python else "")
