"""End-to-end commands/s with stream trimming on, against the same run with trimming off
(`APIKEYS_TRIM_STREAMS=false`); target: within 10%.

With trimming on, the results and events windows are small (`--window` entries), so they
fill early in the run and every later second trims about as many entries as were added; the
commands stream loses each entry once it is answered. The two modes alternate (`--rounds`
times each) and each figure is the median of its rounds, so a neighbour's load on the shared
machine falls on both alike. End: the last command's result is on the results stream and the
projection has applied its position (the stream lengths at the end show that trimming ran).

    .venv/bin/python benchmarks/trimming.py [--commands 30000] [--window 5000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Stack, encode, mixed_workload, xadd_all  # noqa: E402
from benchmarks.pipeline import _last_result_position, _row  # noqa: E402

STREAMS = ("apikeys.commands", "apikeys.results", "apikeys.events", "apikeys.dead-letter")


def _answered(client: redis.Redis, command_id: str, timeout: float = 900) -> None:
    """Wait for the result of ``command_id`` (results come in command order, and the
    results stream's length says nothing once it is trimmed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last: Any = client.xrevrange("apikeys.results", count=1)
        if last and json.loads(last[0][1][b"__data__"]).get("command_id") == command_id:
            return
        time.sleep(0.002)
    raise RuntimeError(f"no result for {command_id}")


def one_run(commands: list[dict[str, Any]], trimming: bool, window: int) -> dict[str, Any]:
    env = {"APIKEYS_TRIM_STREAMS": "true" if trimming else "false"}
    if trimming:
        env |= {
            "APIKEYS_RESULTS_MAX_ENTRIES": str(window),
            "APIKEYS_EVENTS_MAX_ENTRIES": str(window),
        }
    payloads = encode(commands)
    stack = Stack(extra_env=env)
    try:
        stack.start_keys()
        stack.start_projections()
        started = time.perf_counter()
        xadd_all(stack.redis, "apikeys.commands", payloads)
        _answered(stack.redis, commands[-1]["command_id"])
        target = _last_result_position(stack.redis, "apikeys.results")
        while stack.projection_position() < target:
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        time.sleep(1.5)  # one more trimming pass, for the lengths below
        lengths = {name: int(stack.redis.xlen(name)) for name in STREAMS}
    finally:
        stack.stop()
    return {"commands_per_second": len(payloads) / elapsed, "lengths": lengths}


def figures(count: int = 30_000, window: int = 5_000, rounds: int = 2) -> dict[str, Any]:
    commands = mixed_workload(count)
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(rounds):
        for trimming in (False, True):
            runs[trimming].append(one_run(commands, trimming, window))
    on = statistics.median(r["commands_per_second"] for r in runs[True])
    off = statistics.median(r["commands_per_second"] for r in runs[False])
    return {
        "on": on,
        "off": off,
        "rounds": {k: [round(r["commands_per_second"]) for r in v] for k, v in runs.items()},
        "lengths_on": runs[True][-1]["lengths"],
        "lengths_off": runs[False][-1]["lengths"],
    }


def row(count: int = 30_000, window: int = 5_000, rounds: int = 2) -> dict[str, Any]:
    """The run_all.py row: measured with trimming on, baseline the same run with it off."""
    result = figures(count, window, rounds)
    out = _row(
        f"end-to-end commands with trimming on ({window:,}-entry windows), SQLite",
        result["on"],
        "within 10% of trimming off (ratio >= 0.90)",
        result["off"],
        "trimming off, same run",
    )
    out["rounds"] = result["rounds"]
    out["lengths_on"] = result["lengths_on"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=30_000)
    parser.add_argument("--window", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = figures(args.commands, args.window, args.rounds)
    ratio = result["on"] / result["off"]
    print(
        f"end to end, {args.commands:,} mixed commands, SQLite, median of {args.rounds} rounds:\n"
        f"  trimming on ({args.window:,}-entry windows): {result['on']:,.0f} commands/s\n"
        f"  trimming off (same run, baseline):          {result['off']:,.0f} commands/s\n"
        f"  ratio {ratio:.2f} (target >= 0.90); rounds {result['rounds']}\n"
        f"  stream lengths at the end, on:  {result['lengths_on']}\n"
        f"  stream lengths at the end, off: {result['lengths_off']}"
    )


if __name__ == "__main__":
    main()
