"""Permission checks: in-process rate, HTTP checks/s with p50/p99 at 50 connections, rebuild
rate, a role change held by 10,000 keys, read-model memory; each next to a same-run baseline.

    .venv/bin/python benchmarks/checks.py [--quick] [--duration 10] [--loadgen auto|wrk|python]

Writes the table as JSON to benchmarks/results/checks-latest.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from benchmarks import check_workload as w  # noqa: E402
from benchmarks import http_load  # noqa: E402
from benchmarks.harness import ROOT, wait_http  # noqa: E402
from contracts import events as ev  # noqa: E402
from contracts.common import Permission  # noqa: E402
from services.local.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from services.projections import model as rules  # noqa: E402
from services.projections.feed.rebuild import REBUILD_CHUNK, rebuild  # noqa: E402
from services.projections.runtime.settings import Settings  # noqa: E402
from services.projections.store import open_store  # noqa: E402
from services.projections.store.batch import batch_for  # noqa: E402
from services.projections.store.sql import SqlViewStore  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "checks-latest.json"
Row = dict[str, Any]


def row(
    figure: str,
    measured: float,
    unit: str,
    target: str,
    ok: bool,
    baseline: float | None = None,
    baseline_name: str = "",
    ratio: float | None = None,
    **extra: Any,
) -> Row:
    return {
        "figure": figure,
        "measured": measured,
        "unit": unit,
        "target": target,
        "ok": ok,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": ratio,
        **extra,
    }


def in_process(model: rules.ReadModel, queries: list[w.Query]) -> Row:
    check, now = rules.check, w.NOW
    for key_id, permission, loc, own in queries:  # warm: materialise every key's grants
        check(model, key_id, permission, loc, own, now)
    table = {key_id: True for key_id in model.keys}

    def lookup(_: Any, key_id: str, permission: str, loc: str, own: bool, now: Any) -> Any:
        return table.get(key_id)

    def rate(function: Any) -> float:
        best = 0.0
        for _ in range(3):
            started = time.perf_counter()
            for key_id, permission, loc, own in queries:
                function(model, key_id, permission, loc, own, now)
            best = max(best, len(queries) / (time.perf_counter() - started))
        return best

    measured, baseline = rate(check), rate(lookup)
    allowed = sum(check(model, *q, now).allowed for q in queries) / len(queries)
    return row(
        "in-process check",
        measured,
        "checks/s",
        ">= 1,000,000",
        measured >= 1e6,
        baseline,
        "function call + dict lookup",
        measured / baseline,
        allowed_share=round(allowed, 3),
    )


def role_change(model: rules.ReadModel, store: SqlViewStore) -> Row:
    """Add a permission to the role every key holds; apply, persist, and check every key."""
    org = model.organizations[w.ORG]
    old = org.roles[w.SHARED_ROLE].permissions
    active = [k for k in model.keys if rules.key_status(model, k, w.NOW) == "active"]
    targets = [
        (
            k,
            next(
                c.location_id
                for c in model.keys[k].state.matrix
                if c.role_id == w.SHARED_ROLE and c.applies
            ),
        )
        for k in active
    ]

    def check_all(permission: str) -> int:
        return sum(
            rules.check(model, k, permission, loc, False, w.NOW).allowed for k, loc in targets
        )

    check_all("view")
    started = time.perf_counter()
    baseline_allowed = check_all("view")
    baseline = time.perf_counter() - started
    event = ev.RolePermissionsChanged(
        position=model.position + 1,
        organization_id=w.ORG,
        occurred_at=w.T0,
        role_id=w.SHARED_ROLE,
        name=w.SHARED_ROLE,
        permissions=[*old, Permission("approve", "location_and_below")],
    )
    started = time.perf_counter()
    touched = rules.apply(model, event)
    assert touched is not None and store.save(batch_for(model, [touched]))
    allowed = check_all("approve")
    measured = time.perf_counter() - started
    assert allowed == len(targets) == baseline_allowed, (allowed, len(targets))
    return row(
        f"role change visible to {len(targets):,} keys (apply+store+check all)",
        measured * 1000,
        "ms",
        "< 1,000 ms",
        measured < 1.0,
        baseline * 1000,
        "the same checks, warm, before the change",
        measured / baseline,
    )


def rebuild_rate(redis_url: str, events: list[ev.AnyEvent], store_url: str) -> Row:
    client = redis.Redis.from_url(redis_url)
    w.publish(client, events)
    started = time.perf_counter()  # baseline: read the same stream in the same chunks, raw
    read, cursor = 0, "-"
    while True:
        entries = client.xrange("apikeys.events", min=cursor, count=REBUILD_CHUNK)
        read += len(entries)
        if len(entries) < REBUILD_CHUNK:
            break
        cursor = "(" + entries[-1][0].decode()
    baseline = read / (time.perf_counter() - started)
    started = time.perf_counter()
    applied = rebuild(Settings(redis_url=redis_url, view_store=store_url))
    measured = len(events) / (time.perf_counter() - started)
    return row(
        f"rebuild ({len(events):,} events, {applied:,} applied, SQLite)",
        measured,
        "events/s",
        ">= 50,000",
        measured >= 50_000,
        baseline,
        "XRANGE of the same stream, same chunks",
        measured / baseline,
    )


def memory(keys: int) -> Row:
    def run(what: str) -> dict[str, int]:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.check_memory", what, "--keys", str(keys)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return dict(json.loads(out))

    model, baseline = run("model"), run("baseline")
    mb, base_mb = model["rss_growth"] / 2**20, baseline["rss_growth"] / 2**20
    return row(
        f"read-model memory ({model['grants']:,} grants, RSS growth)",
        mb,
        "MB",
        "<= 300 MB",
        mb <= 300,
        base_mb,
        "set of (key, location, permission) tuples",
        mb / base_mb,
        rss_states_only_mb=round(model["rss_folded"] / 2**20, 1),
    )


def start(args: list[str], env: dict[str, str], log: Path, url: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    wait_http(url)
    return process


def http(
    tmp: Path,
    redis_url: str,
    store_url: str,
    model: rules.ReadModel,
    queries: list[w.Query],
    seconds: float,
    tool: str,
    rounds: int,
) -> list[Row]:
    import os

    port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "APIKEYS_VIEW_STORE": store_url,
        "APIKEYS_HTTP_ADDR": f"127.0.0.1:{port}",
    }
    service = start(
        ["-m", "services.projections"],
        env,
        tmp / "projections.log",
        f"http://127.0.0.1:{port}/health",
    )
    bare = start(
        ["-m", "benchmarks.bare_asgi", str(bare_port), str(len(model.keys))],
        dict(os.environ),
        tmp / "bare.log",
        f"http://127.0.0.1:{bare_port}/v1/check?key_id=k1",
    )
    try:
        paths = [w.query_path(q) for q in queries]
        for q, path in zip(queries[:300], paths[:300], strict=True):  # the server agrees
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as answer:  # noqa: S310
                got = json.loads(answer.read())["allowed"]
            assert got == rules.check(model, *q, w.NOW).allowed, (path, got)
        runs: dict[str, list[http_load.Load]] = {"service": [], "bare": []}
        targets = {"service": port, "bare": bare_port}
        for p in targets.values():  # warm-up
            http_load.run(f"http://127.0.0.1:{p}", paths, 1, 50, tool)
        for _ in range(rounds):  # alternate, so both see the same machine
            for name, p in targets.items():
                runs[name].append(
                    http_load.run(f"http://127.0.0.1:{p}", paths, seconds / rounds, 50, tool)
                )
    finally:
        for process in (service, bare):
            process.terminate()
            process.wait(timeout=10)

    def total(name: str) -> tuple[float, float, float, int]:
        loads = runs[name]
        rate = sum(x.requests for x in loads) / sum(x.seconds for x in loads)
        p50 = sum(x.p50_ms for x in loads) / len(loads)
        return rate, p50, max(x.p99_ms for x in loads), sum(x.bad for x in loads)

    rate, p50, p99, bad = total("service")
    bare_rate, bare_p50, bare_p99, bare_bad = total("bare")
    ratio = rate / bare_rate
    via = f"{tool}, 50 connections, {seconds:g}s each"
    return [
        row(
            f"HTTP GET /v1/check ({via})",
            rate,
            "checks/s",
            ">= 80% of bare ASGI",
            ratio >= 0.8 and bad == 0,
            bare_rate,
            "bare ASGI dict lookup, same uvicorn stack",
            ratio,
            non_2xx_or_errors=bad,
            bare_non_2xx_or_errors=bare_bad,
        ),
        row(
            "HTTP check p50 latency",
            p50,
            "ms",
            "-",
            True,
            bare_p50,
            "bare ASGI p50",
            p50 / bare_p50,
        ),
        row(
            "HTTP check p99 latency (worst round)",
            p99,
            "ms",
            "<= 5 ms",
            p99 <= 5,
            bare_p99,
            "bare ASGI p99",
            p99 / bare_p99,
        ),
    ]


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def print_table(rows: list[Row]) -> None:
    header = ("figure", "measured", "target", "same-run baseline", "ratio", "ok")
    lines = [
        (
            r["figure"],
            f"{fmt(r['measured'])} {r['unit']}",
            r["target"],
            f"{fmt(r['baseline'])} ({r['baseline_name']})" if r["baseline"] else "-",
            f"{r['ratio']:.2f}" if r["ratio"] is not None else "-",
            "yes" if r["ok"] else "NO",
        )
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    for line in [header, tuple("-" * n for n in widths), *lines]:
        print(" | ".join(str(c).ljust(n) for c, n in zip(line, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 s of HTTP load, a shorter history")
    parser.add_argument("--duration", type=float, help="seconds of HTTP load per server")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--keys", type=int, default=10_000)
    args = parser.parse_args()
    seconds = args.duration or (3.0 if args.quick else 10.0)
    history = 30_000 if args.quick else 100_000
    tool = http_load.tool_name(args.loadgen)
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-checks-"))
    print(f"load generator: {http_load.describe(tool)}; work dir {tmp}", flush=True)
    events, states = w.check_events(args.keys, 1_000, history)
    model = rules.fold(events)
    queries = w.queries(states, 100_000 if args.quick else 300_000)
    rows = [in_process(model, queries)]
    server = EmbeddedRedis(tmp / "redis", append_only=False).start()
    store_url = f"sqlite:///{tmp / 'views.db'}"
    try:
        rows.append(rebuild_rate(server.url, events, store_url))
        loaded = open_store(store_url)
        assert len(loaded.load().keys) == len(model.keys)
        rows += http(
            tmp,
            server.url,
            store_url,
            model,
            queries[:50_000],
            seconds,
            tool,
            1 if args.quick else 2,
        )
        rows.append(role_change(model, loaded))
        loaded.close()
    finally:
        server.stop()
    rows.append(memory(20_000))
    print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "load_generator": tool,
                "quick": args.quick,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
