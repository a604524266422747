"""Where the keys service's memory goes: the service (consumer, processor, inline relay) run in
this process against a private Redis, fed the soak's steady mix (benchmarks/soak_load.py) in
rounds, with tracemalloc snapshots between rounds; prints, per round, the traced total, RSS
and the lines whose allocations grew most since the first round.

    .venv/bin/python benchmarks/keys_memory.py [--rounds 6] [--per-round 20000] [--keys 5000]
                                               [--top 12] [--cache-size N] [--frames 1]

Target: the traced total stops growing once the caches are full (flat within 10 % over the
last rounds); the same-run baseline is the first measured round.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
import redis  # noqa: E402

from benchmarks import soak_load as load  # noqa: E402
from services.keys.health import Readiness  # noqa: E402
from services.keys.main import KeysService  # noqa: E402
from services.keys.settings import KeysSettings  # noqa: E402
from services.local.embedded_redis import EmbeddedRedis  # noqa: E402

MB = 1024 * 1024


def send(url: str, commands: list[dict[str, Any]], timeout: float = 600.0) -> None:
    """XADD the commands and wait until as many more results are on the results stream."""
    client = redis.Redis.from_url(url)
    before = client.xlen(load.RESULTS)
    for start in range(0, len(commands), 1000):
        pipe = client.pipeline(transaction=False)
        for command in commands[start : start + 1000]:
            pipe.xadd(load.COMMANDS, {"__data__": json.dumps(command)})
        pipe.execute()
    deadline = time.monotonic() + timeout
    while client.xlen(load.RESULTS) < before + len(commands):
        if time.monotonic() > deadline:
            raise RuntimeError("results did not arrive")
        time.sleep(0.05)
    client.close()


def report(base: tracemalloc.Snapshot, now: tracemalloc.Snapshot, top: int, frames: int) -> None:
    for stat in now.compare_to(base, "traceback" if frames > 1 else "lineno")[:top]:
        frames = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in stat.traceback]
        print(f"  {stat.size_diff / MB:+8.2f} MB {stat.count_diff:+9d} blocks  {frames[-1]}")
        for frame in reversed(frames[:-1][-4:]):
            print(f"{'':34}<- {frame}")


async def measure(args: argparse.Namespace, url: str, store: str) -> None:
    env = {"REDIS_URL": url, "APIKEYS_EVENT_STORE": store, "APIKEYS_RELAY": "inline"}
    env["APIKEYS_KEYS_HEALTH_ADDR"] = "127.0.0.1:0"
    if args.cache_size is not None:
        env["APIKEYS_CACHE_SIZE"] = str(args.cache_size)
    settings = KeysSettings.from_env(env)
    service = KeysService(settings, Readiness(), asyncio.Event())
    await service.start()
    try:
        await asyncio.to_thread(send, url, load.setup_commands(args.keys))
        mix = load.Mix(args.keys)
        process = psutil.Process()
        tracemalloc.start(args.frames)
        base: tracemalloc.Snapshot | None = None
        for round_ in range(args.rounds + 1):
            commands = [mix.next() for _ in range(args.per_round)]
            await asyncio.to_thread(send, url, commands)
            gc.collect()
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            traced = sum(s.size for s in snapshot.statistics("filename")) / MB
            rss = process.memory_info().rss / MB
            print(
                f"round {round_}: {mix.count} commands, traced {traced:.1f} MB, RSS {rss:.1f} MB",
                flush=True,
            )
            if base is None:
                base = snapshot
            else:
                report(base, snapshot, args.top, args.frames)
    finally:
        tracemalloc.stop()
        await service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=5000)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--cache-size", type=int, default=None)
    parser.add_argument("--frames", type=int, default=1, help="frames kept per allocation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), append_only=False) as r:
        asyncio.run(measure(args, r.url, f"sqlite:///{tmp}/events.db"))


if __name__ == "__main__":
    main()
