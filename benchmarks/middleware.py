"""Requests per second of a small Litestar app protected by the gateway middleware (cache on,
the default 2 s) against the same app unprotected, in the same run: each served by uvicorn in
a process of its own, loaded in alternating rounds with keep-alive connections (wrk when
installed, else the Python generator); the projection service behind the middleware is real.

    .venv/bin/python benchmarks/middleware.py [--seconds 5] [--rounds 3] [--connections 20]
"""

from __future__ import annotations

import argparse
import json
import statistics

from benchmarks import http_load
from benchmarks.harness import Stack, wait_http
from client import ClientSettings, SyncClient
from services.local.embedded_redis import free_port

TARGET_RATIO = 0.8  # protected (cached) at least 80% of the unprotected rate

APP = """
import sys, uvicorn
from litestar import Litestar, get
from client.middleware import ApiKeyMiddleware

@get("/items")
async def items() -> dict[str, str]:
    return {"items": "..."}

@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}

protected = sys.argv[2] == "protected"
middleware = [lambda app: ApiKeyMiddleware(app, exempt_paths=("/health",))] if protected else []
uvicorn.run(Litestar([items, health], middleware=middleware), host="127.0.0.1",
            port=int(sys.argv[1]), log_level="warning")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tool", default="auto", choices=("auto", "wrk", "python"))
    args = parser.parse_args()
    tool = http_load.tool_name(args.tool)
    stack = Stack()
    try:
        stack.start_keys()
        stack.start_projections()
        settings = ClientSettings(
            redis_url=stack.redis_server.url, projection_url=f"http://{stack.http}"
        )
        with SyncClient(settings) as client:
            client.enable_api_module("bench", raise_on_reject=True)
            client.grant_api_administrator("bench", "alice")
            client.define_location("bench", "plant", "Plant")
            key = client.create_key("bench", "alice", "Bench", ["plant"], raise_on_reject=True)
            client.check(key.key_id, "x", "plant", min_position=key.result.position)
        app_file = stack.tmp / "app.py"
        app_file.write_text(APP)
        ports = {"protected": free_port(), "unprotected": free_port()}
        for mode, port in ports.items():
            env = {"APIKEYS_PROJECTION_URL": f"http://{stack.http}"}
            stack.start_module(str(app_file), env, (str(port), mode))
        rates: dict[str, list[float]] = {"protected": [], "unprotected": []}
        headers = {"Authorization": f"Bearer {key.token}"}
        for port in ports.values():
            wait_http(f"http://127.0.0.1:{port}/health")
        for _ in range(args.rounds):
            for mode, port in ports.items():
                load = http_load.run(
                    f"http://127.0.0.1:{port}", ["/items"], args.seconds, args.connections,
                    tool, headers,
                )  # fmt: skip
                assert load.bad == 0, f"{mode}: {load.bad} answers not 2xx"
                rates[mode].append(load.rate)
    finally:
        stack.stop()
    protected, unprotected = (statistics.median(rates[m]) for m in ("protected", "unprotected"))
    report = {
        "figure": "requests/s of an app behind the gateway middleware (cached verify)",
        "measured": round(protected),
        "baseline_unprotected": round(unprotected),
        "ratio": round(protected / unprotected, 2),
        "target_ratio": TARGET_RATIO,
        "tool": http_load.describe(tool),
        "rounds": {m: [round(r) for r in rates[m]] for m in rates},
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"protected: {protected:,.0f} requests/s; unprotected (same run): {unprotected:,.0f} "
        f"requests/s; ratio {protected / unprotected:.2f} (target >= {TARGET_RATIO}); "
        f"load from {report['tool']}"
    )


if __name__ == "__main__":
    main()
