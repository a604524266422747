"""Event store recorders that write a batch with fewer round trips than the library's, with
the same tables and the same stored bytes, so a stock eventsourcing application reads them.
Each also answers the position queries the library does not offer, in its own SQL.

Selected through eventsourcing's `APPLICATION_RECORDER_TOPIC` (see `store.application`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from services.keys.store.fencing import (
    POSTGRES_EPOCHS_SUFFIX,
    SQLITE_EPOCHS_TABLE,
    Fence,
    Fenced,
)

# above every position either backend can give (a signed 64-bit integer's largest value)
_NO_LIMIT = 2**63 - 1

# Pages a connection writes to SQLite's log between two checkpoints (SQLite's default: 1,000).
# A batch of an import's keys dirties over a thousand index pages (aggregate ids land all over
# the b-tree), so the default checkpointed after nearly every batch, copying its pages a second
# time and syncing the database file on the batch's path. The log file is cut back to
# WAL_BYTES after a checkpoint.
WAL_PAGES = 10_000
WAL_BYTES = 64 * 1024 * 1024
_WAL_SETTINGS = (f"PRAGMA wal_autocheckpoint={WAL_PAGES}", f"PRAGMA journal_size_limit={WAL_BYTES}")


@runtime_checkable
class PositionLookups(Protocol):
    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """The global position (notification id) of one stored event."""

    def last_position(self, topics: tuple[str, ...], at_most: int | None = None) -> int:
        """The position of the newest stored event with one of ``topics`` (0 if none), or of
        the newest at or before ``at_most``."""

    def take_epoch(self, partition: str) -> int:
        """A new epoch for ``partition`` (one more than the last), committed at once: from
        now on only batches fenced with it are stored for the partition."""


class BatchSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """One `executemany` per batch instead of one `execute` per event.

    The notification id of an event is its rowid. SQLite gives a new row the largest rowid in
    the table plus one, and the batch is inserted in one write transaction (no other writer
    can insert in between), so the batch's rowids are the consecutive numbers after the
    table's largest rowid before the insert, ending at `last_insert_rowid()`. That is checked;
    should it ever not hold, the ids are looked up row by row.

    A batch given a ``fence`` is checked against the partition's epoch after its rows are
    inserted (the insert holds SQLite's write lock, so nobody can take a new epoch between
    the check and the commit) and rolled back with ``Fenced`` when the epoch moved on.
    """

    def __init__(self, datastore: SQLiteDatastore, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        self._select_epoch = f"SELECT epoch FROM {SQLITE_EPOCHS_TABLE} WHERE partition_stream=?"  # noqa: S608

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {SQLITE_EPOCHS_TABLE} "
            "(partition_stream TEXT PRIMARY KEY, epoch INTEGER NOT NULL)",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        for setting in _WAL_SETTINGS:  # per connection: set on the one this batch writes on
            c.execute(setting)
        ids = self._insert_batch(c, stored_events)
        fence: Fence | None = kwargs.get("fence")
        if fence is not None:
            c.execute(self._select_epoch, (fence.partition,))
            row = c.fetchone()
            if row is None or int(row[0]) != fence.epoch:
                raise Fenced(fence)
        return ids

    def take_epoch(self, partition: str) -> int:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {SQLITE_EPOCHS_TABLE} (partition_stream, epoch) VALUES (?, 1) "  # noqa: S608
                "ON CONFLICT (partition_stream) DO UPDATE SET epoch = epoch + 1",
                (partition,),
            )
            c.execute(self._select_epoch, (partition,))
            return int(c.fetchone()[0])

    def _insert_batch(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent]
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        c.execute(self.select_max_notification_id_statement)
        before = c.fetchone()[0] or 0
        params = [
            (
                s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                s.originator_version,
                s.topic,
                s.state,
            )
            for s in stored_events
        ]
        c.executemany(self.insert_events_statement, params)
        c.execute("SELECT last_insert_rowid()")
        last = c.fetchone()[0]
        if last - before == len(params):
            return list(range(before + 1, last + 1))
        return self._look_up_rowids(c, params)

    def _look_up_rowids(self, c: SQLiteCursor, params: list[tuple[Any, ...]]) -> list[int]:
        ids = []
        for originator_id, version, _, _ in params:
            c.execute(self._select_rowid, (originator_id, version))
            ids.append(int(c.fetchone()[0]))
        return ids

    @property
    def _select_rowid(self) -> str:
        return (
            f"SELECT rowid FROM {self.events_table_name} "  # noqa: S608
            "WHERE originator_id=? AND originator_version=?"
        )

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self._select_rowid, (originator_id.hex, version))
            row = cursor.fetchone()
            return int(row[0]) if row else None

    def last_position(self, topics: tuple[str, ...], at_most: int | None = None) -> int:
        marks = ", ".join("?" for _ in topics)
        select = (
            f"SELECT rowid FROM {self.events_table_name} "  # noqa: S608
            f"WHERE topic IN ({marks}) AND rowid <= ? ORDER BY rowid DESC LIMIT 1"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(select, (*topics, _NO_LIMIT if at_most is None else at_most))
            row = cursor.fetchone()
            return int(row[0]) if row else 0


class ArraysPostgresApplicationRecorder(PostgresApplicationRecorder):
    """The batch as four arrays (uuid[], bigint[], text[], bytea[]) in binary format, instead
    of one array of a composite type, which psycopg writes as text with per-byte escaping of
    every event's state. The table lock, the NOTIFY and `RETURNING notification_id` in
    insertion order are the library's.

    A batch given a ``fence`` inserts its rows only if the partition's epoch is still the
    fence's (the same statement checks it, under the table lock that ``take_epoch`` takes
    too); when it has moved on nothing is inserted and ``Fenced`` is raised."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        schema = Identifier(datastore.schema)
        self.epochs_table = self.events_table_name.removesuffix("_events") + POSTGRES_EPOCHS_SUFFIX
        self.check_identifier_length(self.epochs_table)
        epochs = Identifier(self.epochs_table)
        insert = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
        ).format(
            schema=schema,
            table=Identifier(self.events_table_name),
            id_type=Identifier(datastore.originator_id_type),
        )
        self.insert_arrays_statement = insert + SQL("RETURNING notification_id")
        self.insert_fenced_statement = insert + SQL(
            "WHERE EXISTS (SELECT 1 FROM {schema}.{epochs} "
            "WHERE partition_stream = %s AND epoch = %s) RETURNING notification_id"
        ).format(schema=schema, epochs=epochs)
        self.take_epoch_statement = SQL(
            "INSERT INTO {schema}.{epochs} AS e (partition_stream, epoch) VALUES (%s, 1) "
            "ON CONFLICT (partition_stream) DO UPDATE SET epoch = e.epoch + 1 RETURNING epoch"
        ).format(schema=schema, epochs=epochs)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{epochs} "
                "(partition_stream text PRIMARY KEY, epoch bigint NOT NULL)"
            ).format(schema=schema, epochs=epochs)
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        arrays = (
            [s.originator_id for s in stored_events],
            [s.originator_version for s in stored_events],
            [s.topic for s in stored_events],
            [s.state for s in stored_events],
        )
        fence: Fence | None = kwargs.get("fence")
        if fence is None:
            curs.execute(self.insert_arrays_statement, arrays, prepare=True)
        else:
            params = (*arrays, fence.partition, fence.epoch)
            curs.execute(self.insert_fenced_statement, params, prepare=True)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        fence: Fence | None = kwargs.get("fence")
        if fence is not None and stored_events and not ids:
            raise Fenced(fence)  # nothing was inserted: the transaction commits nothing
        return ids

    def take_epoch(self, partition: str) -> int:
        with self.datastore.transaction(commit=True) as curs:
            self._lock_table(curs)  # after every batch in flight, before any that follows
            curs.execute(self.take_epoch_statement, (partition,))
            row = curs.fetchone()
            assert row is not None
            return int(row["epoch"])

    def _events_table(self) -> Composed:
        return SQL("{}.{}").format(
            Identifier(self.datastore.schema or "public"), Identifier(self.events_table_name)
        )

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        sql = SQL(
            "SELECT notification_id FROM {} WHERE originator_id=%s AND originator_version=%s"
        ).format(self._events_table())
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(sql, (originator_id, version))
            row = cursor.fetchone()
            return int(row["notification_id"]) if row else None

    def last_position(self, topics: tuple[str, ...], at_most: int | None = None) -> int:
        sql = SQL(
            "SELECT notification_id FROM {} WHERE topic = ANY(%s) AND notification_id <= %s "
            "ORDER BY notification_id DESC LIMIT 1"
        ).format(self._events_table())
        limit = _NO_LIMIT if at_most is None else at_most
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(sql, (list(topics), limit))
            row = cursor.fetchone()
            return int(row["notification_id"]) if row else 0
