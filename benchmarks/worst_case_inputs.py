"""The event loop's longest stall for the worst inputs within the limits (README "Limits").

    .venv/bin/python benchmarks/worst_case_inputs.py [--json]

Projection service: the work each event costs on its loop, step by step as the follower and
the HTTP handlers do it (decode and fold the entry, free what it dropped, serialise its rows, the
first check after it; the loaded model kept out of the cycle collector's reach, as the service
does), for a key at the most locations and roles (created, then renamed), a role at the most
permissions changed (held by that key and by 1,000 typical keys), and an organization at the
most locations with a location moved near the root. Keys service: the same commands through
the processor in its worker thread (as the consumer runs it) while the loop is probed, after
the consumer's on-loop decode of the entry. Each row's baseline: the same with a typical input.
Also ``/v1/keys/{id}/permissions`` paged through the HTTP app (in process, on the probed
loop): every page of a large key, and the first pages of the largest key within the limits.

Target: no stall over 50 ms. The probe wakes every millisecond; a stall is the longest gap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contracts import events as ev  # noqa: E402
from services.projections.feed.consumer import fold_entries  # noqa: E402
from services.projections.model import gc_policy, queries  # noqa: E402
from services.projections.model.fold import apply  # noqa: E402
from services.projections.model.state import ReadModel  # noqa: E402
from services.projections.store.batch import batch_for_yielding  # noqa: E402
from services.projections.store.event_log import EventRow  # noqa: E402
from tests.support.projection_builders import stream_fields  # noqa: E402
from tests.support.worst_case import (  # noqa: E402
    LARGEST,
    TYPICAL,
    LoopProbe,
    Pages,
    Size,
    Stall,
    create_key,
    organization,
    permission,
    permission_pages,
)

TARGET = 0.050
NOW = datetime(2025, 1, 1, tzinfo=UTC)
Step = Callable[[], Awaitable[object]]


class Projection:
    """A read model and the loop-side steps of one event, as the follower and HTTP run them."""

    def __init__(self, size: Size) -> None:
        self.size = size
        self.log = organization(size)
        self.model = ReadModel()
        for event in self.log.events:
            apply(self.model, event)
        self.model.released = []  # as the live service keeps it (``LiveReadModel``)
        gc_policy.settle(self.model)  # as the service does once it has loaded its model
        self.key_id = "key-largest"

    def event_steps(self, event: ev.AnyEvent, check_key: str) -> list[Step]:
        entry_id, fields = stream_fields(event)
        entries = [(entry_id.encode(), {k.encode(): v for k, v in fields.items()})]
        rows: list[EventRow] = []
        touched: list[Any] = []

        async def fold() -> None:
            touched.extend(fold_entries(self.model, entries, rows))

        async def release() -> None:
            await gc_policy.release(self.model)

        async def serialise() -> None:
            await batch_for_yielding(self.model, touched, rows)

        async def first_check() -> None:
            location = self.size.location(self.size.locations - 1)
            queries.check(self.model, check_key, permission(1), location, False, NOW)

        return [fold, release, serialise, first_check]


async def longest(steps: list[Step]) -> Stall:
    """The longest stall over the steps (yielding between them) and their total time."""

    async def run() -> None:
        for step in steps:
            await step()
            await asyncio.sleep(0)

    return await LoopProbe().measure(run)


async def projection_rows(size: Size) -> dict[str, Stall]:
    p = Projection(size)
    out: dict[str, Stall] = {}
    created = create_key(p.log, size, p.key_id)
    out["key at the most locations and roles: created"] = await longest(
        p.event_steps(created, p.key_id)
    )
    renamed = p.log.key(ev.ApiKeyRenamed, p.key_id, {"name": "renamed"}, name="renamed")
    out["... renamed"] = await longest(p.event_steps(renamed, p.key_id))
    role = size.role(0)
    for i in range(1_000):  # typical holders of the role, compiled by a check each
        p.model.grant_cache.pop(f"t{i}", None)
        apply(p.model, p.log.create_key(f"t{i}", [size.location(i % size.locations)], [role]))
        queries.check(p.model, f"t{i}", permission(1), size.location(0), False, NOW)
    perms = [(f"new-{i}-".ljust(40, "x"), "location_and_below") for i in range(size.permissions)]
    changed = p.log.role(role, *perms, changed=True)
    out["role at the most permissions changed"] = await longest(p.event_steps(changed, "t1"))
    moved = p.log.move(size.location(1), size.location(2))
    out["organization at the most locations: location moved"] = await longest(
        p.event_steps(moved, "t1")
    )
    return out


async def pages_figure(size: Size, max_pages: int) -> Pages:
    """The largest key's /v1/keys/{id}/permissions, paged through the HTTP app in process."""
    p = Projection(size)
    apply(p.model, create_key(p.log, size, p.key_id))
    return await permission_pages(p.model, p.key_id, NOW, max_pages)


def rows_for(
    measured: dict[str, Stall], base: dict[str, Stall], service: str
) -> list[dict[str, Any]]:
    rows = []
    for name, (stall, took, cpu) in measured.items():
        rows.append(
            {
                "figure": f"{service}: {name}, longest loop stall",
                "measured": round(stall * 1000, 1),
                "unit": "ms",
                "target": f"<= {TARGET * 1000:.0f} ms",
                "baseline": round(base[name][0] * 1000, 1),
                "baseline_name": "typical input",
                "ratio": round(stall / base[name][0], 1) if base[name][0] else None,
                "work_ms": round(took * 1000, 1),
                "cpu_ms": round(cpu * 1000, 1),
                "baseline_cpu_ms": round(base[name].cpu * 1000, 1),
            }
        )
    return rows


# /v1/keys/{id}/permissions comes a page at a time; the largest key within the limits lists
# about 10^9 reasons, so its first pages are measured, and a smaller large key's whole listing
PERMISSIONS_SIZE = Size(
    locations=5_000, key_locations=10, key_roles=2, permissions=20, id_length=36
)
LARGEST_PAGES = 30


def pages_row(name: str, measured: Pages, base: Pages) -> dict[str, Any]:
    return {
        "figure": f"projection: /v1/keys/{{id}}/permissions, {name}, longest loop stall",
        "measured": round(measured.stall * 1000, 1),
        "unit": "ms",
        "target": f"<= {TARGET * 1000:.0f} ms",
        "baseline": round(base.stall * 1000, 1),
        "baseline_name": "typical key",
        "ratio": round(measured.stall / base.stall, 1) if base.stall else None,
        "work_ms": round(measured.took * 1000, 1),
        "cpu_ms": round(measured.cpu * 1000, 1),
        "baseline_cpu_ms": round(base.cpu * 1000, 1),
        "pages": measured.pages,
        "entries": measured.entries,
        "largest_page_bytes": measured.biggest,
        "bytes": measured.total,
    }


def figures() -> list[dict[str, Any]]:
    from benchmarks.worst_case_keys import keys_rows

    rows = rows_for(
        asyncio.run(projection_rows(LARGEST)), asyncio.run(projection_rows(TYPICAL)), "projection"
    )
    show(rows)
    with tempfile.TemporaryDirectory() as tmp:
        largest = asyncio.run(keys_rows(LARGEST, Path(tmp) / "largest.db"))
        typical = asyncio.run(keys_rows(TYPICAL, Path(tmp) / "typical.db"))
    keys = rows_for(largest, typical, "keys")
    show(keys)
    typical_pages = asyncio.run(pages_figure(TYPICAL, 1_000_000))
    size = PERMISSIONS_SIZE
    pages = [
        pages_row(
            f"every page of a key of {size.key_locations} locations x {size.key_roles} roles x "
            f"{size.permissions} permissions in {size.locations:,} locations",
            asyncio.run(pages_figure(size, 1_000_000)),
            typical_pages,
        ),
        pages_row(
            f"the first {LARGEST_PAGES} pages of the largest key",
            asyncio.run(pages_figure(LARGEST, LARGEST_PAGES)),
            typical_pages,
        ),
    ]
    show(pages)
    return [*rows, *keys, *pages]


def show(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        verdict = "ok" if row["measured"] <= TARGET * 1000 else "OVER"
        pages = ""
        if "pages" in row:
            pages = (
                f"; {row['pages']} pages, {row['entries']:,} entries, {row['bytes']:,} bytes, "
                f"largest page {row['largest_page_bytes']:,} bytes"
            )
        print(
            f"{row['figure']}: {row['measured']} {row['unit']}, {row['cpu_ms']} ms of CPU (work "
            f"{row['work_ms']} ms{pages}; target {row['target']}; same-run "
            f"{row['baseline_name']} {row['baseline']} ms, {row['baseline_cpu_ms']} ms of CPU) "
            f"{verdict}",
            file=sys.stderr,  # progress as it goes; --json prints the rows on stdout
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = figures()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("summary:")
    for row in rows:
        verdict = "ok" if row["measured"] <= TARGET * 1000 else "OVER"
        print(
            f"{row['figure']}: {row['measured']} {row['unit']} ({row['cpu_ms']} ms of CPU; "
            f"target {row['target']}; same-run {row['baseline_name']} {row['baseline']} ms, "
            f"{row['baseline_cpu_ms']} ms of CPU) {verdict}"
        )


if __name__ == "__main__":
    main()
