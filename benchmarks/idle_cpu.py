"""Idle CPU of the whole product: `python -m services.cli run` after a small warm-up, then
user+sys CPU time of every process of its tree over an idle window, as a share of one core.

    .venv/bin/python benchmarks/idle_cpu.py [--seconds 10]

Target: keys service + relay + projection service under 1 % of a core in total (the `run`
supervisor and Redis are reported separately and in the whole-product total). Same-run
baseline: an idle redis-server with the product's configuration (AOF on), started beside it and
measured over the same window: an event-driven server that does nothing while idle.
CPU times come from /proc in clock ticks (10 ms): over 10 s one tick is 0.1 % of a core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
import redis  # noqa: E402

from benchmarks.product import (  # noqa: E402
    SERVICE_ROLES,
    Product,
    last_position,
    wait_projection,
    wait_results,
)
from services.local.embedded_redis import EmbeddedRedis  # noqa: E402
from tests.support.scenario import create_key, key_command, organization_setup  # noqa: E402

TARGET_PERCENT = 1.0


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def warm_up(product: Product) -> int:
    """A few commands through the whole pipeline; returns how many."""
    commands = organization_setup("idle", locations=3, roles=2)
    commands += [create_key("idle", f"k{i}", locations=("L1", "L2")) for i in range(3)]
    commands.append(key_command("RenameApiKey", "idle", "k0", name="renamed"))
    client = redis.Redis.from_url(product.redis_url)
    try:
        for command in commands:
            client.xadd("apikeys.commands", {"__data__": json.dumps(command)})
        wait_results(client, "apikeys.results", len(commands))
        wait_projection(product, last_position(client, "apikeys.results"))
    finally:
        client.close()
    return len(commands)


def measure(seconds: float) -> dict[str, Any]:
    """Per-process share of one core (percent) over `seconds` of idle, and the baseline's."""
    with tempfile.TemporaryDirectory(prefix="apikeys-idle-") as tmp:
        baseline = EmbeddedRedis(Path(tmp) / "redis", append_only=True)
        product = Product()
        try:
            baseline.start()
            product.start()
            warmed = warm_up(product)
            time.sleep(1.0)  # let the last batch's follow-up work settle
            assert baseline.process is not None
            processes = product.tree() | {"baseline": psutil.Process(baseline.process.pid)}
            before = {role: cpu_seconds(p) for role, p in processes.items()}
            started = time.monotonic()
            time.sleep(seconds)
            after = {role: cpu_seconds(p) for role, p in processes.items()}
            elapsed = time.monotonic() - started
            pids = {role: p.pid for role, p in processes.items()}
        finally:
            product.stop()
            baseline.stop()
    share = {role: 100 * (after[role] - before[role]) / elapsed for role in processes}
    return {"seconds": elapsed, "warm_up_commands": warmed, "share": share, "pids": pids}


def report(result: dict[str, Any]) -> dict[str, Any]:
    """Print the breakdown and return the row for run_all.py."""
    share: dict[str, float] = result["share"]
    product = {role: value for role, value in share.items() if role != "baseline"}
    services = round(sum(v for role, v in product.items() if role in SERVICE_ROLES), 2)
    whole = sum(product.values())
    baseline = share["baseline"]
    print(
        f"idle CPU over {result['seconds']:.1f} s after {result['warm_up_commands']} warm-up "
        "commands (`python -m services.cli run`, SQLite, embedded Redis)"
    )
    print(f"  {'process':18} {'pid':>8} {'% of a core':>12}")
    for role, value in product.items():
        print(f"  {role:18} {result['pids'][role]:>8} {value:>12.2f}")
    print(
        f"  {'idle redis-server':18} {result['pids']['baseline']:>8} {baseline:>12.2f}  (baseline)"
    )
    ratio = services / baseline if baseline > 0 else None
    print(
        f"services (keys + relay + projections): {services:.2f} % of a core, "
        f"target < {TARGET_PERCENT:g} % -> {'met' if services < TARGET_PERCENT else 'NOT met'}; "
        f"same-run baseline, idle redis-server alone: {baseline:.2f} %"
        + (f" (ratio {ratio:.1f})" if ratio is not None else "")
    )
    print(f"whole product (with the supervisor and Redis): {whole:.2f} % of a core")
    tick = 100 / os.sysconf("SC_CLK_TCK") / result["seconds"]
    print(f"(CPU times count in clock ticks: one tick is {tick:.2f} % of a core over this window)")
    return {
        "figure": f"idle CPU, keys + relay + projections ({result['seconds']:.0f} s)",
        "measured": round(services, 2),
        "unit": "% of a core",
        "target": f"< {TARGET_PERCENT:g} % of a core",
        "baseline": round(baseline, 2),
        "baseline_name": "idle redis-server alone, AOF on",
        "ratio": round(ratio, 2) if ratio is not None else None,
        "whole_product_percent": round(whole, 2),
        "per_process_percent": {role: round(value, 2) for role, value in product.items()},
    }


def row(seconds: float = 10.0) -> dict[str, Any]:
    return report(measure(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the idle window")
    args = parser.parse_args()
    row(args.seconds)


if __name__ == "__main__":
    main()
