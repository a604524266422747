"""Restart cost: the first command on the organization with the longest history after a restart.

    .venv/bin/python benchmarks/restart_cost.py [--events 100000] [--postgres URL] [--runs 3]

An organization gets about `--events` events through the command path (the keys service's
processor, which writes snapshots as it stores, `APIKEYS_SNAPSHOT_INTERVAL`); then, `--runs`
times, a new application and processor over the same store (what a restart leaves: nothing
cached) apply one RenameLocation to it, timed from the call to its result. Target: 100 ms.
Same-run baseline: the same with snapshots off (no snapshot read, the whole history replayed).
Runs on SQLite, and on PostgreSQL with `--postgres URL` (a schema of its own, dropped after).
Writes the rows to benchmarks/results/restart-cost-latest.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec  # noqa: E402

from benchmarks.harness import fresh_postgres_schema  # noqa: E402
from contracts.commands import command_decoder  # noqa: E402
from services.keys.domain import Organization  # noqa: E402
from services.keys.processor import CommandProcessor, Entry  # noqa: E402
from services.keys.settings import DEFAULT_SNAPSHOT_INTERVAL  # noqa: E402
from services.keys.store import ApiKeysApplication  # noqa: E402
from tests.support.scenario import organization_setup  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "restart-cost-latest.json"
ORG = "longest"
TARGET_MS = 100.0
BATCH = 500


class Commands:
    def __init__(self) -> None:
        self.count = 0

    def entry(self, command: dict[str, Any]) -> Entry:
        self.count += 1
        return Entry(f"{self.count}-0", command_decoder.decode(msgspec.json.encode(command)))

    def rename(self) -> Entry:
        n = self.count
        return self.entry(
            {
                "type": "RenameLocation",
                "command_id": f"rename-{n}",
                "organization_id": ORG,
                "location_id": f"L{n % 20}",
                "name": f"site {n}",
            }
        )


def build(url: str, events: int, commands: Commands) -> None:
    """The organization's history through the command path (one event per rename)."""
    app = ApiKeysApplication(url)
    processor = CommandProcessor(app)
    setup = [commands.entry(c) for c in organization_setup(ORG, locations=20, roles=5)]
    processor.process(setup)
    started = time.perf_counter()
    while commands.count < events:
        processor.process([commands.rename() for _ in range(min(BATCH, events - commands.count))])
    version = app.repository.get(Organization.create_id(ORG)).version
    print(
        f"  built {version:,} organization events in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    app.close()


def first_command_ms(url: str, commands: Commands, snapshots: bool) -> tuple[float, int]:
    """A restart's first command on the organization (ms), and the events its load replayed."""
    extra = {} if snapshots else {"IS_SNAPSHOTTING_ENABLED": "n"}
    app = ApiKeysApplication(url, **extra)
    try:
        interval = DEFAULT_SNAPSHOT_INTERVAL if snapshots else 0
        processor = CommandProcessor(app, snapshot_interval=interval)
        entry = commands.rename()
        started = time.perf_counter()
        (result,) = processor.process([entry])
        elapsed = (time.perf_counter() - started) * 1000
        assert result.status == "accepted", result
        _, replayed = app.load(Organization.create_id(ORG))
        return elapsed, replayed
    finally:
        app.close()


def measure(name: str, url: str, events: int, runs: int) -> dict[str, Any]:
    print(f"{name}:", flush=True)
    commands = Commands()
    build(url, events, commands)
    timings: dict[bool, list[float]] = {True: [], False: []}
    read: dict[bool, int] = {}
    for _ in range(runs):
        for snapshots in (False, True):
            ms, read[snapshots] = first_command_ms(url, commands, snapshots)
            timings[snapshots].append(ms)
    measured, baseline = statistics.median(timings[True]), statistics.median(timings[False])
    print(
        f"  first command after a restart: {measured:.1f} ms (events replayed {read[True]}), "
        f"target {TARGET_MS:.0f} ms, baseline without snapshots {baseline:.1f} ms "
        f"(events replayed {read[False]:,})",
        flush=True,
    )
    return {
        "figure": f"first command after a restart, {events // 1000}k-event organization ({name})",
        "measured": round(measured, 1),
        "unit": "ms",
        "target": f"<= {TARGET_MS:.0f} ms",
        "baseline": round(baseline, 1),
        "baseline_name": "snapshots off",
        "ratio": round(baseline / measured, 1) if measured else None,
    }


def figures(postgres: str | None, events: int = 100_000, runs: int = 3) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="apikeys-restart-") as tmp:
        rows.append(measure("SQLite", f"sqlite:///{tmp}/events.db", events, runs))
    if postgres:
        url, drop = fresh_postgres_schema(postgres)
        try:
            rows.append(measure("PostgreSQL", url, events, runs))
        finally:
            drop()
    return rows


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args(argv)
    rows = figures(args.postgres, args.events, args.runs)
    out(json.dumps(rows, indent=2))
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
