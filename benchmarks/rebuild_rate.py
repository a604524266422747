"""Rebuild rate alone: the check workload on an embedded Redis, rebuilt into SQLite stores.

    .venv/bin/python -m benchmarks.rebuild_rate [--events 100000] [--runs 5] [--refill] [--profile]

Each run rebuilds into a fresh store (as ``benchmarks/checks.py`` does); ``--refill`` also
rebuilds into the store left by the previous run (replacing existing content).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path

import redis

from benchmarks import check_workload as w
from services.local.embedded_redis import EmbeddedRedis
from services.projections.feed.rebuild import rebuild
from services.projections.runtime.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--refill", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    events, _ = w.check_events(10_000, 1_000, args.events)
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-rebuild-"))
    server = EmbeddedRedis(tmp / "redis", append_only=False).start()
    try:
        client = redis.Redis.from_url(server.url)
        w.publish(client, events)
        rates = []
        for run in range(args.runs):
            url = f"sqlite:///{tmp / 'views.db' if args.refill else tmp / f'views{run}.db'}"
            settings = Settings(redis_url=server.url, view_store=url)
            profiler = cProfile.Profile() if args.profile and run == args.runs - 1 else None
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            applied = rebuild(settings)
            if profiler:
                profiler.disable()
            seconds = time.perf_counter() - started
            rates.append(len(events) / seconds)
            print(
                f"run {run}: {applied} applied, {seconds:.3f} s, {rates[-1]:,.0f} events/s",
                flush=True,
            )
            if profiler:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        print(f"median {statistics.median(rates):,.0f} events/s, best {max(rates):,.0f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
