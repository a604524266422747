"""Commands per second end to end: first XADD to last result, through the keys service process.

Prints the measured figure next to a same-run baseline of the raw Redis stream work
(pipelined XADD, XREADGROUP in batches, one reply XADD each, XACK) with no domain at all.

    .venv/bin/python benchmarks/commands_end_to_end.py [--commands 20000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import (
    Stack,
    encode,
    fresh_postgres_schema,
    mixed_workload,
    raw_round_trips,
    wait_len,
    xadd_all,
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--postgres", help="postgresql:// URL for the event store")
    args = parser.parse_args()
    payloads = encode(mixed_workload(args.commands))
    store_url, drop = fresh_postgres_schema(args.postgres) if args.postgres else (None, None)
    stack = Stack(event_store=store_url)
    try:
        baseline = raw_round_trips(stack.redis, payloads)
        stack.start_keys()
        started = time.perf_counter()
        xadd_all(stack.redis, "apikeys.commands", payloads)
        finished = wait_len(stack.redis, "apikeys.results", len(payloads))
        measured = len(payloads) / (finished - started)
        statuses: dict[str, int] = {}
        for _, fields in stack.redis.xrange("apikeys.results", count=len(payloads)):
            status = fields[b"__data__"].split(b'"status":"')[1].split(b'"')[0].decode()
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        stack.stop()
        if drop:
            drop()
    store = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"commands end to end ({store}, {len(payloads)} mixed commands): {measured:,.0f} commands/s"
    )
    print(
        f"same-run baseline, raw Redis stream round trips:          {baseline:,.0f} msg/s "
        f"(ratio {measured / baseline:.2f})"
    )
    print(f"results by status: {statuses}")


if __name__ == "__main__":
    main()
