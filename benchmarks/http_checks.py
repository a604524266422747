"""Only the HTTP figure of ``checks.py``: the projection service and the bare ASGI baseline on
the same server stack, alternating rounds of wrk at 50 connections. For iterating on the HTTP
path without the rest of the check benchmark (nothing is written to results/).

Besides rate and latency it prints each server's CPU time per request (from /proc): on a
shared, loaded machine the rate moves with the neighbours, the CPU cost of a request much less.

    .venv/bin/python benchmarks/http_checks.py [--duration 3] [--rounds 2] [--keys 10000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import check_workload as w  # noqa: E402
from benchmarks import checks, http_load  # noqa: E402
from benchmarks.http_load import Load  # noqa: E402
from services.local.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from services.projections import model as rules  # noqa: E402
from services.projections.store import open_store  # noqa: E402
from services.projections.store.batch import full_batch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per server")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    tool = http_load.tool_name(args.loadgen)
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-http-checks-"))
    events, states = w.check_events(args.keys, 1_000, 30_000)
    model = rules.fold(events)
    queries = w.queries(states, 50_000)
    store_url = f"sqlite:///{tmp / 'views.db'}"
    store = open_store(store_url)
    store.replace(full_batch(model))
    store.close()
    server = EmbeddedRedis(tmp / "redis", append_only=False).start()
    try:
        rounds = measure(
            tmp,
            server.url,
            store_url,
            len(model.keys),
            [w.query_path(x) for x in queries],
            args.duration,
            args.rounds,
            tool,
        )
    finally:
        server.stop()
    for name, loads in rounds.items():
        for load, cpu_us in loads:
            print(
                f"{name:8} {load.rate:9,.0f} req/s  p50 {load.p50_ms:5.2f} ms  "
                f"p99 {load.p99_ms:6.2f} ms  cpu {cpu_us:5.1f} us/req  bad {load.bad}"
            )
    rate = {
        n: sum(x.requests for x, _ in v) / sum(x.seconds for x, _ in v) for n, v in rounds.items()
    }
    cpu = {n: sum(c for _, c in v) / len(v) for n, v in rounds.items()}
    print(
        f"ratio of rates {rate['service'] / rate['bare']:.2f}; "
        f"ratio of CPU per request (bare / service) {cpu['bare'] / cpu['service']:.2f}"
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    tmp: Path,
    redis_url: str,
    store_url: str,
    keys: int,
    paths: list[str],
    seconds: float,
    rounds: int,
    tool: str,
) -> dict[str, list[tuple[Load, float]]]:
    port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "APIKEYS_VIEW_STORE": store_url,
        "APIKEYS_HTTP_ADDR": f"127.0.0.1:{port}",
    }
    service = checks.start(
        ["-m", "services.projections"],
        env,
        tmp / "projections.log",
        f"http://127.0.0.1:{port}/health",
    )
    bare = checks.start(
        ["-m", "benchmarks.bare_asgi", str(bare_port), str(keys)],
        dict(os.environ),
        tmp / "bare.log",
        f"http://127.0.0.1:{bare_port}/v1/check?key_id=k1",
    )
    servers = {"service": (service.pid, port), "bare": (bare.pid, bare_port)}
    found: dict[str, list[tuple[Load, float]]] = {"service": [], "bare": []}
    try:
        for _, p in servers.values():  # warm-up
            http_load.run(f"http://127.0.0.1:{p}", paths, 1, 50, tool)
        for _ in range(rounds):
            for name, (pid, p) in servers.items():
                before = cpu_seconds(pid)
                load = http_load.run(f"http://127.0.0.1:{p}", paths, seconds, 50, tool)
                used = cpu_seconds(pid) - before
                found[name].append((load, used / max(load.requests, 1) * 1e6))
    finally:
        for process in (service, bare):
            process.terminate()
            process.wait(timeout=10)
    return found


if __name__ == "__main__":
    main()
