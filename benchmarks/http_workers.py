"""Checks per CPU-second of the projection service's HTTP workers: APIKEYS_HTTP_WORKERS=2
against one process (the baseline), in the same run, on the same read model (each service
its own copy of the view store), alternating rounds of load at 50 connections (ABBA order).

The CPU counted is that of the processes that answer: the one process, or the two workers
(their parent, which only supervises, is printed apart). Target: the per-worker efficiency
with two workers (checks per CPU-second) at least 0.9 of one process's, which is what linear
scaling on a machine with cores to spare needs; on this 2-core machine the load generator
shares the cores, so checks/s is printed too but is not the figure.

    .venv/bin/python benchmarks/http_workers.py [--duration 3] [--rounds 4] [--keys 10000]

Writes its figures to benchmarks/results/http-workers-latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import check_workload as w  # noqa: E402
from benchmarks import checks, http_load  # noqa: E402
from benchmarks.http_checks import cpu_seconds  # noqa: E402
from services.local.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from services.projections import model as rules  # noqa: E402
from services.projections.store import open_store  # noqa: E402
from services.projections.store.batch import full_batch  # noqa: E402

TARGET_RATIO = 0.9
CONNECTIONS = 50
RESULT = Path(__file__).resolve().parent / "results" / "http-workers-latest.json"
WORKERS = {"one": 1, "two": 2}


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    workers: list[int] = field(default_factory=list)  # the pids that answer

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.workers)


@dataclass
class Round:
    checks: int
    seconds: float
    cpu: float  # of the workers
    parent_cpu: float
    bad: int


def start(tmp: Path, name: str, redis_url: str, store_url: str) -> Service:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "APIKEYS_VIEW_STORE": store_url,
        "APIKEYS_HTTP_ADDR": f"127.0.0.1:{port}",
        "APIKEYS_HTTP_WORKERS": str(WORKERS[name]),
    }
    env.pop("APIKEYS_CALLERS_FILE", None)
    url = f"http://127.0.0.1:{port}"
    process = checks.start(
        ["-m", "services.projections"], env, tmp / f"{name}.log", url + "/health"
    )
    service = Service(process, url)
    deadline = time.monotonic() + 30
    while True:
        children = [p.pid for p in psutil.Process(process.pid).children()]
        if WORKERS[name] == 1:
            service.workers = [process.pid]
            break
        if len(children) == WORKERS[name]:
            service.workers = children
            break
        assert time.monotonic() < deadline, f"{name}: workers {children}"
        time.sleep(0.1)
    return service


def measure(args: argparse.Namespace, tool: str) -> dict[str, list[Round]]:
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-http-workers-"))
    events, states = w.check_events(args.keys, 1_000, 30_000)
    model = rules.fold(events)
    paths = [w.query_path(x) for x in w.queries(states, 50_000)]
    stores = {}
    for name in WORKERS:
        stores[name] = f"sqlite:///{tmp / name / 'views.db'}"
        store = open_store(stores[name])
        store.replace(full_batch(model))
        store.close()
    server = EmbeddedRedis(tmp / "redis", append_only=False).start()
    services: dict[str, Service] = {}
    try:
        for name in WORKERS:
            services[name] = start(tmp, name, server.url, stores[name])
        for name, service in services.items():
            warm_up(name, service, paths, tool)
        return rounds(services, paths, args, tool)
    finally:
        for service in services.values():
            service.process.terminate()
            service.process.wait(timeout=15)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def warm_up(name: str, service: Service, paths: list[str], tool: str) -> None:
    """Load until every answer is a 200 (a worker answers 503 while it loads its model)."""
    for _ in range(30):
        load = http_load.run(service.url, paths, 1, CONNECTIONS, tool)
        if load.bad == 0:
            return
    raise AssertionError(f"{name}: {load.bad} answers were not 200")


# what is measured: (label, service, connections). "one/25" gives the one process as many
# connections as each of the two workers gets (the kernel spreads the 50 over them): with a
# load generator that cannot saturate two workers here, each worker sees half the load, and
# a worker's CPU per check grows as its event loop wakes for fewer requests at a time
RUNS = (("one", "one", CONNECTIONS), ("two", "two", CONNECTIONS), ("one/25", "one", 25))


def rounds(
    services: dict[str, Service], paths: list[str], args: argparse.Namespace, tool: str
) -> dict[str, list[Round]]:
    found: dict[str, list[Round]] = {label: [] for label, _, _ in RUNS}
    for round_ in range(args.rounds):
        # ABBA: none always follows another (the load on the machine drifts)
        for label, name, connections in RUNS if round_ % 2 == 0 else RUNS[::-1]:
            service = services[name]
            pid = service.process.pid
            before, parent_before = service.cpu(), cpu_seconds(pid)
            load = http_load.run(service.url, paths, args.duration, connections, tool)
            parent = cpu_seconds(pid) - parent_before if WORKERS[name] > 1 else 0.0
            used = service.cpu() - before
            found[label].append(Round(load.requests, load.seconds, used, parent, load.bad))
    return found


def report(found: dict[str, list[Round]]) -> dict[str, Any]:
    for name, runs in found.items():
        for r in runs:
            print(
                f"{name:4} {r.checks / r.seconds:9,.0f} checks/s  "
                f"{r.checks / max(r.cpu, 1e-9):9,.0f} checks per worker CPU-second  "
                f"workers' cores {r.cpu / r.seconds:4.2f}  parent CPU {r.parent_cpu:.2f} s  "
                f"bad {r.bad}"
            )
    per_cpu = {n: sum(r.checks for r in v) / sum(r.cpu for r in v) for n, v in found.items()}
    rate = {n: sum(r.checks for r in v) / sum(r.seconds for r in v) for n, v in found.items()}
    ratio = per_cpu["two"] / per_cpu["one"]
    row = {
        "figure": "HTTP checks per worker CPU-second, 2 workers",
        "measured": round(per_cpu["two"]),
        "unit": "checks/CPU-s",
        "target": f">= {TARGET_RATIO} x baseline",
        "baseline": round(per_cpu["one"]),
        "baseline_name": "one process, same run",
        "ratio": round(ratio, 3),
        "checks_per_second": {n: round(v) for n, v in rate.items()},
        "rounds": {n: [round(r.checks / r.cpu) for r in v] for n, v in found.items()},
        "same_connections_per_worker": {
            "baseline": round(per_cpu["one/25"]),
            "ratio": round(per_cpu["two"] / per_cpu["one/25"], 3),
        },
        "parent_cpu_seconds": round(sum(r.parent_cpu for r in found["two"]), 3),
        "bad": sum(r.bad for v in found.values() for r in v),
    }
    print(
        f"HTTP checks per worker CPU-second with 2 workers: measured {per_cpu['two']:,.0f}, "
        f"target >= {TARGET_RATIO * per_cpu['one']:,.0f} ({TARGET_RATIO} of the baseline), "
        f"baseline one process {per_cpu['one']:,.0f}, ratio {ratio:.2f} "
        f"({'met' if ratio >= TARGET_RATIO else 'NOT met'}); "
        f"checks/s: one {rate['one']:,.0f}, two {rate['two']:,.0f}"
    )
    print(
        f"at the same connections per worker (one process at 25): "
        f"{per_cpu['one/25']:,.0f} checks per CPU-second, ratio of 2 workers to it "
        f"{per_cpu['two'] / per_cpu['one/25']:.2f}"
    )
    return row


def row(duration: float = 3.0, rounds_: int = 4) -> dict[str, Any]:
    """The figure for run_all (in a process of its own: it holds a large model)."""
    args = [
        sys.executable,
        str(Path(__file__).resolve()),
        f"--duration={duration}",
        f"--rounds={rounds_}",
    ]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(RESULT.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    tool = http_load.tool_name(args.loadgen)
    print(f"load generator: {http_load.describe(tool)}", flush=True)
    found = measure(args, tool)
    result = report(found)
    result["when"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULT.relative_to(RESULT.parent.parent.parent)}")


if __name__ == "__main__":
    main()
