"""Checks/s over HTTP with callers (every request carries a caller token: one SHA-256 and one
dict lookup, then the caller's scope and organization) against the same lean check path
without a callers file, in the same run: two projection services on the same read model,
alternating rounds of load at 50 connections (ABBA order). Target: at least 0.9 of the rate without.

The callers file holds the most callers it may (1,000); the measured caller sees 100
organizations, the workload's among them, so every answer is a real one.

    .venv/bin/python benchmarks/http_callers.py [--duration 3] [--rounds 3] [--keys 10000]

Writes its figures to benchmarks/results/http-callers-latest.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import check_workload as w  # noqa: E402
from benchmarks import checks, http_load  # noqa: E402
from benchmarks.http_checks import cpu_seconds  # noqa: E402
from benchmarks.http_load import Load  # noqa: E402
from contracts.callers import MAX_CALLERS  # noqa: E402
from contracts.tokens import CALLER_PREFIX, new_token, token_sha256  # noqa: E402
from services.local.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from services.projections import model as rules  # noqa: E402
from services.projections.http.app import create_app, served  # noqa: E402
from services.projections.runtime.callers import Caller, Callers  # noqa: E402
from services.projections.runtime.live import LiveReadModel  # noqa: E402
from services.projections.store import open_store  # noqa: E402
from services.projections.store.batch import full_batch  # noqa: E402

TARGET_RATIO = 0.9
RESULT = Path(__file__).resolve().parent / "results" / "http-callers-latest.json"


def callers_file(path: Path) -> str:
    """A full callers file; returns the token of the measured caller (the last one)."""
    tokens = [new_token(CALLER_PREFIX) for _ in range(MAX_CALLERS)]
    entries = [
        {
            "name": f"caller-{n}",
            "secret_sha256": token_sha256(token),
            "scopes": ["verify", "check"],
            "organizations": [f"org-{n}-{m}" for m in range(3)],
        }
        for n, token in enumerate(tokens)
    ]
    entries[-1]["organizations"] = [w.ORG, *(f"org-{n}" for n in range(99))]
    path.write_text(json.dumps(entries))
    return tokens[-1]


def in_process(model: rules.ReadModel, paths: list[str], token: str, rounds: int = 4) -> dict:
    """Microseconds per check of the served app called directly (no sockets, no HTTP parser),
    the two apps taking turns request by request so that both meet the same moments of a
    shared machine: the median of each."""
    live = LiveReadModel(model)
    organizations = frozenset({w.ORG, *(f"o{n}" for n in range(99))})
    callers = Callers({token_sha256(token): Caller("bench", frozenset({"check"}), organizations)})
    apps = {
        "without": served(create_app(live)),
        "callers": served(create_app(live, callers=callers)),
    }
    headers = {"without": [], "callers": [(b"authorization", f"Bearer {token}".encode())]}
    queries = [p.split("?", 1)[1].encode() for p in paths[:5_000]]
    times: dict[str, list[int]] = {name: [] for name in apps}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200

    async def receive() -> Any:
        return {"type": "http.request"}

    def ask(name: str, query: bytes) -> None:
        scope = {"type": "http", "path": "/v1/check", "method": "GET"}
        call: Any = apps[name](
            {**scope, "query_string": query, "headers": headers[name]}, receive, send
        )
        started = time.perf_counter_ns()
        with contextlib.suppress(StopIteration):  # the lean path never waits
            call.send(None)
        times[name].append(time.perf_counter_ns() - started)

    for round_ in range(rounds):
        for query in queries:
            for name in ("without", "callers") if round_ % 2 == 0 else ("callers", "without"):
                ask(name, query)
    return {name: sorted(t)[len(t) // 2] / 1000 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    args = parser.parse_args()
    tool = http_load.tool_name(args.loadgen)
    print(f"load generator: {http_load.describe(tool)}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-http-callers-"))
    events, states = w.check_events(args.keys, 1_000, 30_000)
    model = rules.fold(events)
    paths = [w.query_path(x) for x in w.queries(states, 50_000)]
    store_url = f"sqlite:///{tmp / 'views.db'}"
    store = open_store(store_url)
    store.replace(full_batch(model))
    store.close()
    token = callers_file(tmp / "callers.json")
    lean = in_process(model, paths, token)
    print(
        f"lean check path in process: without callers {lean['without']:.2f} us/check, "
        f"with callers {lean['callers']:.2f} us/check, "
        f"ratio of rates {lean['without'] / lean['callers']:.2f} (medians, requests interleaved)",
        flush=True,
    )
    server = EmbeddedRedis(tmp / "redis", append_only=False).start()
    try:
        found = measure(tmp, server.url, store_url, token, paths, args, tool)
    finally:
        server.stop()
    report(found, lean)


def measure(
    tmp: Path,
    redis_url: str,
    store_url: str,
    token: str,
    paths: list[str],
    args: argparse.Namespace,
    tool: str,
) -> dict[str, list[tuple[Load, float]]]:
    base = {**os.environ, "REDIS_URL": redis_url, "APIKEYS_VIEW_STORE": store_url}
    base.pop("APIKEYS_CALLERS_FILE", None)
    ports = {"without": free_port(), "callers": free_port()}
    extra = {"without": {}, "callers": {"APIKEYS_CALLERS_FILE": str(tmp / "callers.json")}}
    headers = {"without": {}, "callers": {"Authorization": f"Bearer {token}"}}
    services = {
        name: checks.start(
            ["-m", "services.projections"],
            {**base, "APIKEYS_HTTP_ADDR": f"127.0.0.1:{port}", **extra[name]},
            tmp / f"{name}.log",
            f"http://127.0.0.1:{port}/health",
        )
        for name, port in ports.items()
    }
    found: dict[str, list[tuple[Load, float]]] = {name: [] for name in services}
    try:
        for name, port in ports.items():  # warm-up, and a check that every answer is a 200
            load = http_load.run(f"http://127.0.0.1:{port}", paths, 1, 50, tool, headers[name])
            assert load.bad == 0, f"{name}: {load.bad} answers were not 200"
        for round_ in range(args.rounds):
            # ABBA: neither service always follows the other (the load on the machine drifts)
            order = list(ports.items())
            for name, port in order if round_ % 2 == 0 else order[::-1]:
                pid = services[name].pid
                before = cpu_seconds(pid)
                url = f"http://127.0.0.1:{port}"
                load = http_load.run(url, paths, args.duration, 50, tool, headers[name])
                used = cpu_seconds(pid) - before
                found[name].append((load, used / max(load.requests, 1) * 1e6))
    finally:
        for process in services.values():
            process.terminate()
            process.wait(timeout=10)
    return found


def report(found: dict[str, list[tuple[Load, float]]], lean: dict[str, float]) -> None:
    for name, loads in found.items():
        for load, cpu_us in loads:
            print(
                f"{name:8} {load.rate:9,.0f} checks/s  p50 {load.p50_ms:5.2f} ms  "
                f"p99 {load.p99_ms:6.2f} ms  cpu {cpu_us:5.1f} us/check  bad {load.bad}"
            )
    rate = {
        n: sum(x.requests for x, _ in v) / sum(x.seconds for x, _ in v) for n, v in found.items()
    }
    cpu = {n: sum(c for _, c in v) / len(v) for n, v in found.items()}
    ratio = rate["callers"] / rate["without"]
    RESULT.write_text(
        json.dumps(
            {
                "figure": "HTTP checks/s with callers",
                "measured": round(rate["callers"]),
                "target": round(TARGET_RATIO * rate["without"]),
                "baseline": round(rate["without"]),
                "ratio": round(ratio, 3),
                "cpu_us_per_check": {n: round(c, 1) for n, c in cpu.items()},
                "rounds": {n: [round(x.rate) for x, _ in v] for n, v in found.items()},
                "in_process_us_per_check": {n: round(v, 2) for n, v in lean.items()},
            },
            indent=2,
        )
        + "\n"
    )
    print(
        f"HTTP checks/s with callers: measured {rate['callers']:,.0f}, "
        f"target >= {TARGET_RATIO * rate['without']:,.0f} ({TARGET_RATIO} of the baseline), "
        f"baseline without callers {rate['without']:,.0f}, ratio {ratio:.2f} "
        f"({'met' if ratio >= TARGET_RATIO else 'NOT met'}); "
        f"CPU per check ratio (without / callers) {cpu['without'] / cpu['callers']:.2f}"
    )


if __name__ == "__main__":
    main()
