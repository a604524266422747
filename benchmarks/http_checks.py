"""Only the HTTP figure of ``checks.py``: the projection service and the bare ASGI baseline on
the same server stack, alternating rounds of wrk at 50 connections. For iterating on the HTTP
path without the rest of the check benchmark (nothing is written to results/).

    .venv/bin/python benchmarks/http_checks.py [--duration 3] [--rounds 2] [--keys 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import check_workload as w  # noqa: E402
from benchmarks import checks, http_load  # noqa: E402
from services.embedded_redis import EmbeddedRedis  # noqa: E402
from services.projections import rules, views  # noqa: E402


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
    store = views.open_store(store_url)
    store.replace(views.full_batch(model))
    store.close()
    server = EmbeddedRedis(tmp / "redis", append_only=False).start()
    try:
        rows = checks.http(tmp, server.url, store_url, model, queries, args.duration * args.rounds,
                           tool, args.rounds)
    finally:
        server.stop()
    checks.print_table(rows)


if __name__ == "__main__":
    main()
