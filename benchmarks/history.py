"""Audit history: the first page of a key with 10,000 events, on SQLite (and PostgreSQL with
--postgres URL), next to a same-run baseline of a bare indexed SELECT of the same rows.

    .venv/bin/python benchmarks/history.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contracts.codec import json_encoder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import fresh_postgres_schema  # noqa: E402
from contracts import events as ev  # noqa: E402
from contracts.common import MatrixCell  # noqa: E402
from services.projections import model as rules  # noqa: E402
from services.projections.audit import queries as audit_queries  # noqa: E402
from services.projections.store import open_store  # noqa: E402
from services.projections.store.batch import batch_for  # noqa: E402
from services.projections.store.event_log import event_row  # noqa: E402
from services.projections.store.sql import SqlViewStore  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(i: int) -> ev.KeyState:
    return ev.KeyState(
        name=f"name {i}",
        location_ids=["L0", "L1"],
        role_ids=["R0"],
        matrix=[MatrixCell("R0", "L0", True), MatrixCell("R0", "L1", i % 2 == 0)],
        enabled=True,
        deleted=False,
        expires_at=None,
        secret_sha256="a" * 64,
        secret_hint="h",
    )


def history_events(own: int, others: int) -> list[ev.AnyEvent]:
    """`own` events of key-1 interleaved with `others` events of other keys."""
    events: list[ev.AnyEvent] = [
        ev.OrganizationRegistered(position=1, organization_id="acme", occurred_at=T0)
    ]
    position = 1
    for i in range(own + others):
        position += 1
        key_id = "key-1" if i % ((own + others) // own) == 0 else f"k{i}"
        at = T0 + timedelta(seconds=i)
        if key_id == "key-1":
            events.append(
                ev.RoleLocationToggled(
                    position=position,
                    organization_id="acme",
                    occurred_at=at,
                    actor_id="alice",
                    command_id=f"c{i}",
                    key_id=key_id,
                    key=state(i),
                    role_id="R0",
                    location_id="L1",
                    applies=i % 2 == 0,
                )
            )
        else:
            events.append(
                ev.ApiKeyCreated(
                    position=position,
                    organization_id="acme",
                    occurred_at=at,
                    key_id=key_id,
                    key=state(i),
                )
            )
    return events


def fill(store: SqlViewStore, events: list[ev.AnyEvent]) -> int:
    model = rules.ReadModel()
    own = 0
    for start in range(0, len(events), 2000):
        chunk = events[start : start + 2000]
        touched, rows = [], []
        for event in chunk:
            change = rules.apply(model, event)
            if change is not None:
                touched.append(change)
            model.position = event.position
            rows.append(event_row(event, json_encoder.encode(event)))
            own += isinstance(event, ev.KeyEvent) and event.key_id == "key-1"
        store.save(batch_for(model, touched, rows))
    return own


def timed(fn, repeat: int = 30) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000, max(samples) * 1000


def measure(store: SqlViewStore, label: str) -> None:
    events = history_events(10_000, 20_000)
    own = fill(store, events)
    page = audit_queries.key_history(store, "key-1", 0, 100)
    assert len(page.entries) == 100 and page.next_after_position is not None
    median, worst = timed(lambda: audit_queries.key_history(store, "key-1", 0, 100))
    base_median, _ = timed(
        lambda: store.query(
            "SELECT event FROM {p}event_log WHERE key_id = ? AND position > ? ORDER BY position"
            " LIMIT ?",
            ("key-1", 0, 101),
        )
    )
    print(
        f"{label}: key with {own:,} events among {len(events):,}: first history page (100) "
        f"median {median:.2f} ms, worst {worst:.2f} ms (target: well under 1,000 ms); "
        f"same-run baseline, bare indexed SELECT of the rows: {base_median:.2f} ms "
        f"(ratio {median / base_median:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="apikeys-history-"))
    store = open_store(f"sqlite:///{tmp / 'views.db'}")
    measure(store, "SQLite")
    store.close()
    if args.postgres:
        url, drop = fresh_postgres_schema(args.postgres)
        try:
            pg = open_store(url)
            measure(pg, "PostgreSQL")
            pg.close()
        finally:
            drop()


if __name__ == "__main__":
    main()
