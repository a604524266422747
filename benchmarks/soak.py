"""Soak: the whole product (`python -m services.cli run`) under a steady mixed load for N
minutes; memory sampled every 30 s, growth per hour fitted after the first minute.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--rate 200] [--check-rate 200]
                                        [--keys 5000] [--postgres URL] [--cache-size N]

Load (benchmarks/soak_load.py): the organization and `--keys` keys are created first (not
measured), then commands go in via XADD at `--rate` a second over those keys only (renames,
matrix toggles, disable/enable, CreateApiKey of existing ids), and GET /v1/check at
`--check-rate` a second from threads. Every sample records the RSS of each process of the
product's tree and Redis `used_memory`, with XLEN and MEMORY USAGE of each stream: nothing trims
the streams, so they grow with every command by design; Redis growth beyond them is the suspect
part. Target: no leak, i.e. less than `--max-growth` MB/h per process and for Redis beyond its
streams; the same-run reference for Redis is the streams' own growth. Writes the summary as JSON
to benchmarks/results/soak-latest.json.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
import redis  # noqa: E402

from benchmarks import soak_load as load  # noqa: E402
from benchmarks import soak_report as report  # noqa: E402
from benchmarks.harness import encode, fresh_postgres_schema, xadd_all  # noqa: E402
from benchmarks.product import (  # noqa: E402
    Product,
    last_position,
    wait_projection,
    wait_results,
)

RESULTS = Path(__file__).resolve().parent / "results" / "soak-latest.json"
MB = 1024 * 1024


class Load:
    """The sender, the results reader and the checkers, started and stopped together."""

    def __init__(self, product: Product, client: redis.Redis, args: argparse.Namespace):
        self.stop = threading.Event()
        self.reader_stop = threading.Event()
        top: Any = client.xrevrange(load.RESULTS, count=1)
        start_id: bytes = top[0][0] if top else b"0-0"
        self.sender = load.Sender(product.redis_url, args.rate, load.Mix(args.keys), self.stop)
        self.reader = load.Reader(product.redis_url, start_id, self.sender, self.reader_stop)
        self.check_latency = load.Latencies()
        rate = args.check_rate / args.check_threads
        self.checkers = [
            load.Checker(i, product.http, rate, args.keys, self.check_latency, self.stop)
            for i in range(args.check_threads)
        ]
        self.workers: list[load.Worker] = [self.reader, self.sender, *self.checkers]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def failed(self) -> list[str]:
        return [f"{w.name}: {w.error!r}" for w in self.workers if w.error is not None]

    def finish(self, drain_seconds: float = 60.0) -> None:
        """Stop sending, wait for every result (or `drain_seconds`), stop reading."""
        self.stop.set()
        self.sender.join(10)
        deadline = time.monotonic() + drain_seconds
        while self.reader.received < self.sender.sent and time.monotonic() < deadline:
            if self.reader.error is not None:
                break
            time.sleep(0.1)
        self.reader_stop.set()
        for worker in self.workers:
            worker.join(5)

    def checks(self) -> tuple[int, int]:
        return sum(c.done for c in self.checkers), sum(c.errors for c in self.checkers)


def sample(product: Product, client: redis.Redis, running: Load, t: float) -> dict[str, Any]:
    tree = product.tree()
    rss = {role: p.memory_info().rss / MB for role, p in tree.items()}
    cpu = {role: sum(p.cpu_times()[:2]) for role, p in tree.items()}
    cpu["load generator (this script)"] = sum(psutil.Process().cpu_times()[:2])
    streams = {
        name: {
            "xlen": int(client.xlen(name)),
            "memory_mb": (client.memory_usage(name, samples=0) or 0) / MB,
        }
        for name in load.STREAMS
    }
    done, errors = running.checks()
    return {
        "t": round(t, 1),
        "pids": {role: p.pid for role, p in tree.items()},
        "rss_mb": rss,
        "cpu_seconds": cpu,
        "redis_used_memory_mb": int(client.info("memory")["used_memory"]) / MB,
        "streams": streams,
        "sent": running.sender.sent,
        "received": running.reader.received,
        "checks": done,
        "check_errors": errors,
        "check_p99_ms_window": load.percentile_ms(running.check_latency.take_window(), 0.99),
    }


def summarize(
    samples: list[dict[str, Any]],
    running: Load,
    args: argparse.Namespace,
    seconds: float,
    interrupted: bool,
) -> dict[str, Any]:
    fitted = [s for s in samples if s["t"] >= args.warm_up_seconds]
    if len(fitted) < 2:
        fitted = samples  # a run shorter than warm-up + one sample: fit everything
    growth = {name: report.slope_per_hour(points) for name, points in report.series(fitted).items()}
    level = {name: points[-1][1] for name, points in report.series(samples).items()}
    xlen = {
        name: report.slope_per_hour([(s["t"], float(s["streams"][name]["xlen"])) for s in fitted])
        for name in load.STREAMS
    }
    done, errors = running.checks()
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "minutes": args.minutes,
            "rate": args.rate,
            "check_rate": args.check_rate,
            "keys": args.keys,
            "postgres": bool(args.postgres),
            "sample_seconds": args.sample_seconds,
            "warm_up_seconds": args.warm_up_seconds,
            "cache_size": args.cache_size,
            "settings": args.set,
        },
        "interrupted": interrupted,
        "seconds": round(seconds, 1),
        "fit_from_t": fitted[0]["t"],
        "fit_samples": len(fitted),
        "target_mb_per_hour": args.max_growth,
        "growth_mb_per_hour": growth,
        "last_mb": level,
        "stream_entries_per_hour": xlen,
        "commands": {
            "sent": running.sender.sent,
            "results": running.reader.received,
            "statuses": dict(running.reader.statuses),
            "result_p50_ms": running.reader.latency.percentile_ms(0.5),
            "result_p99_ms": running.reader.latency.percentile_ms(0.99),
        },
        "checks": {
            "done": done,
            "errors": errors,
            "rate": done / seconds if seconds else None,
            "p50_ms": running.check_latency.percentile_ms(0.5),
            "p99_ms": running.check_latency.percentile_ms(0.99),
        },
        "cpu_percent": report.cpu_percent(samples),
        "samples": samples,
    }


def soak(product: Product, args: argparse.Namespace) -> dict[str, Any]:
    client = redis.Redis.from_url(product.redis_url)
    started = time.monotonic()
    setup = load.setup_commands(args.keys)
    xadd_all(client, load.COMMANDS, encode(setup))
    wait_results(client, load.RESULTS, len(setup), timeout=600)
    wait_projection(product, last_position(client, load.RESULTS), timeout=600)
    print(
        f"set up {args.keys:,} keys ({len(setup):,} commands) in "
        f"{time.monotonic() - started:.1f} s; load for {args.minutes:g} min",
        flush=True,
    )
    running = Load(product, client, args)
    running.start()
    begin, duration = time.monotonic(), args.minutes * 60
    samples: list[dict[str, Any]] = []
    interrupted = False
    try:
        k = 0
        while True:
            due = min(k * args.sample_seconds, duration)
            time.sleep(max(0.0, begin + due - time.monotonic()))
            samples.append(sample(product, client, running, time.monotonic() - begin))
            report.print_sample(samples[-1])
            if len(samples) > 1 and samples[-1]["pids"] != samples[-2]["pids"]:
                print(f"  process ids changed (a restart?): {samples[-1]['pids']}", flush=True)
            if running.failed():
                raise RuntimeError(f"load generator failed: {running.failed()}")
            if due >= duration:
                break
            k += 1
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping the load and summarizing what was measured", flush=True)
    seconds = time.monotonic() - begin
    running.finish()
    summary = summarize(samples, running, args, seconds, interrupted)
    client.close()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="commands a second")
    parser.add_argument("--check-rate", type=float, default=200.0, help="checks a second")
    parser.add_argument("--check-threads", type=int, default=4)
    parser.add_argument("--keys", type=int, default=5000, help="distinct keys")
    parser.add_argument("--sample-seconds", type=float, default=30.0)
    parser.add_argument("--warm-up-seconds", type=float, default=60.0, help="left out of the fit")
    parser.add_argument("--max-growth", type=float, default=10.0, help="target, MB/h")
    parser.add_argument("--postgres", help="PostgreSQL URL: stores in fresh schemas, dropped after")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON summary goes")
    parser.add_argument(
        "--cache-size", type=int, help="APIKEYS_CACHE_SIZE (default: the service's)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="APIKEYS_NAME=VALUE",
        help="a setting for the product (repeatable), e.g. APIKEYS_EVENTS_MAX_ENTRIES=100000",
    )
    args = parser.parse_args()
    drops = []
    env: dict[str, str] = dict(setting.split("=", 1) for setting in args.set)
    if args.cache_size is not None:
        env["APIKEYS_CACHE_SIZE"] = str(args.cache_size)
    product: Product | None = None
    try:
        if args.postgres:
            for variable in ("APIKEYS_EVENT_STORE", "APIKEYS_VIEW_STORE"):
                env[variable], drop = fresh_postgres_schema(args.postgres)
                drops.append(drop)
        product = Product(env).start()
        print(
            f"product up: Redis {product.redis_url}, HTTP {product.http}, "
            f"stores {'PostgreSQL' if args.postgres else 'SQLite'}",
            flush=True,
        )
        summary = soak(product, args)
        report.print_summary(summary)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"written to {args.out}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup short
        if product is not None:
            product.stop()
        for drop in drops:
            drop()


if __name__ == "__main__":
    main()
