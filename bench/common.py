"""What every benchmark starts and reports: its own throw-away cluster and the machine."""

from __future__ import annotations

import http.client
import os
import platform
import tempfile
import threading
import time
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


def post_concurrently(port: int, headers: dict, per_client: list[list[tuple[str, bytes]]]
                      ) -> tuple[float, list[float]]:
    """Each client sends its (path, body) POSTs in order over one keep-alive connection, all
    clients released at once; return (seconds from the release, latencies in ms). Every answer
    must be a 201."""
    latencies: list[list[float]] = [[] for _ in per_client]
    errors: list[str] = []
    gate = threading.Barrier(len(per_client) + 1)

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, clock = latencies[i], time.perf_counter
        gate.wait()
        try:
            for path, body in per_client[i]:
                t0 = clock()
                conn.request("POST", path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
                mine.append((clock() - t0) * 1000)
                if resp.status != 201:
                    errors.append(f"{resp.status} {data[:300]!r}")
                    return
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(per_client))]
    for t in threads:
        t.start()
    gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed, e.g. {errors[0]}")
    return elapsed, [x for lst in latencies for x in lst]
