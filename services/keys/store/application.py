"""The event store: an eventsourcing Application configured from one URL, and the few
queries the library does not offer (each backend's recorder answers them)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, project_aggregate
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from services.common.postgres import LIVENESS
from services.common.store_url import SqliteUrl, parse_store_url
from services.keys.store.postgres import LivelyPostgresFactory
from services.keys.store.recorders import (
    ArraysPostgresApplicationRecorder,
    BatchSQLiteApplicationRecorder,
    PositionLookups,
)
from services.keys.store.transcoder import FastJSONTranscoder

# Same tables and bytes as the library's own classes, fewer steps per batch (see the modules).
SQLITE_RECORDER_TOPIC = get_topic(BatchSQLiteApplicationRecorder)
POSTGRES_RECORDER_TOPIC = get_topic(ArraysPostgresApplicationRecorder)
TRANSCODER_TOPIC = get_topic(FastJSONTranscoder)
POSTGRES_FACTORY_TOPIC = get_topic(LivelyPostgresFactory)
# The connection pool (psycopg_pool, through eventsourcing's PostgreSQL datastore) of each
# process that opens the store (each keys replica, its relay, the command-line tools): this
# many connections kept open, up to POOL_MAX_OVERFLOW more while busy (one writer thread per
# partition held, the probes, replay readers), at most POOL_MAX_WAITING callers queued for a
# connection, each for at most POOL_TIMEOUT_SECONDS (then an outage, retried). With R
# replicas PostgreSQL sees at most 2 * R * (POOL_SIZE + POOL_MAX_OVERFLOW) connections.
POOL_SIZE = 4
POOL_MAX_OVERFLOW = 4
POOL_MAX_WAITING = 64
POOL_TIMEOUT_SECONDS = 3


def persistence_env(url: str) -> dict[str, str]:
    """The library's settings for a store URL (`services.common.store_url`)."""
    target = parse_store_url(url)
    if isinstance(target, SqliteUrl):
        if target.path != ":memory:":
            Path(target.path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": target.path,
            "SQLITE_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": SQLITE_RECORDER_TOPIC,
            "TRANSCODER_TOPIC": TRANSCODER_TOPIC,
        }
    env = {
        "PERSISTENCE_MODULE": POSTGRES_FACTORY_TOPIC,
        "POSTGRES_DBNAME": target.dbname,
        "POSTGRES_HOST": target.host,
        "POSTGRES_PORT": str(target.port),
        "POSTGRES_USER": target.user,
        "POSTGRES_PASSWORD": target.password,
        "POSTGRES_POOL_SIZE": str(POOL_SIZE),
        "POSTGRES_MAX_OVERFLOW": str(POOL_MAX_OVERFLOW),
        "POSTGRES_MAX_WAITING": str(POOL_MAX_WAITING),
        "POSTGRES_CONNECT_TIMEOUT": str(POOL_TIMEOUT_SECONDS),
        "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER_TOPIC,
        "TRANSCODER_TOPIC": TRANSCODER_TOPIC,
    }
    if target.schema:
        env["POSTGRES_SCHEMA"] = target.schema
    return env


@contextlib.contextmanager
def creating_tables_alone(url: str) -> Iterator[None]:
    """Opening the store creates its tables if they are missing. Replicas started together on
    an empty PostgreSQL schema would do it at the same moment, and CREATE TABLE IF NOT EXISTS
    is not safe against that: all but one fail (a duplicate row type, or "relation already
    exists"), and such a replica exited at start, leaving one replica with every partition. So
    each process opens the store under an advisory lock of the schema (a session lock: it goes
    with the connection). SQLite serializes the creation by itself."""
    target = parse_store_url(url)
    if isinstance(target, SqliteUrl):
        yield
        return
    import psycopg  # only a PostgreSQL store needs it
    from psycopg.conninfo import make_conninfo

    lock = f"apikeys store tables {target.schema or 'public'}"
    conninfo = make_conninfo(target.conninfo, connect_timeout=POOL_TIMEOUT_SECONDS, **LIVENESS)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock,))
        yield


class ApiKeysApplication(Application[UUID]):
    """The write model's store. Its name gives the PostgreSQL table `apikeys_events`."""

    name = "ApiKeys"
    # Snapshots live in a table of their own (SQLite `stored_snapshots`, PostgreSQL
    # `apikeys_snapshots`), outside the notification log the relay reads. Reading them is
    # always on; which aggregates get one is the command path's choice (`snapshots`).
    is_snapshotting_enabled = True

    def __init__(self, url: str, **extra_env: Any):
        with creating_tables_alone(url):
            super().__init__(env={**persistence_env(url), **extra_env})

    def load(self, aggregate_id: UUID) -> tuple[Aggregate, int]:
        """The aggregate (from its latest snapshot and the events after it, or from all its
        events when it has none), and how many events were replayed."""
        replayed = 0

        def counted(events: Iterable[Any]) -> Iterator[Any]:
            nonlocal replayed
            for event in events:
                replayed += not isinstance(event, Snapshot)
                yield event

        aggregate: Aggregate = self.repository.get(
            aggregate_id,
            projector_func=lambda initial, events: project_aggregate(initial, counted(events)),
        )
        return aggregate, replayed

    def put_snapshots(self, aggregates: Iterable[Aggregate]) -> None:
        """Snapshots of aggregates as they are stored now (one already stored at the same
        version, by another replica, is the same state and is kept)."""
        assert self.snapshots is not None
        for aggregate in aggregates:
            with contextlib.suppress(IntegrityError):
                self.snapshots.put([type(aggregate).Snapshot.take(aggregate)])

    @property
    def lookups(self) -> PositionLookups:
        recorder = self.recorder
        if not isinstance(recorder, PositionLookups):
            raise TypeError(f"no position lookup for {type(recorder).__name__}")
        return recorder

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """The global position (notification id) of one stored event."""
        return self.lookups.position_of(originator_id, version)

    def last_position(self, topics: tuple[str, ...], at_most: int | None = None) -> int:
        """The position of the newest stored event with one of ``topics`` (0 if none), or of
        the newest at or before ``at_most``."""
        return self.lookups.last_position(topics, at_most)

    def take_epoch(self, partition: str) -> int:
        """A new epoch for a partition (see ``store.fencing``): batches fenced with an older
        one are refused from now on."""
        return self.lookups.take_epoch(partition)
