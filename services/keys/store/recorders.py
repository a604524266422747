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
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

# above every position either backend can give (a signed 64-bit integer's largest value)
_NO_LIMIT = 2**63 - 1


@runtime_checkable
class PositionLookups(Protocol):
    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """The global position (notification id) of one stored event."""

    def last_position(self, topics: tuple[str, ...], at_most: int | None = None) -> int:
        """The position of the newest stored event with one of ``topics`` (0 if none), or of
        the newest at or before ``at_most``."""


class BatchSQLiteApplicationRecorder(SQLiteApplicationRecorder):
    """One `executemany` per batch instead of one `execute` per event.

    The notification id of an event is its rowid. SQLite gives a new row the largest rowid in
    the table plus one, and the batch is inserted in one write transaction (no other writer
    can insert in between), so the batch's rowids are the consecutive numbers after the
    table's largest rowid before the insert, ending at `last_insert_rowid()`. That is checked;
    should it ever not hold, the ids are looked up row by row.
    """

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
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
    insertion order are the library's."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        self.insert_arrays_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(
            schema=Identifier(datastore.schema),
            table=Identifier(self.events_table_name),
            id_type=Identifier(datastore.originator_id_type),
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(
            self.insert_arrays_statement,
            (
                [s.originator_id for s in stored_events],
                [s.originator_version for s in stored_events],
                [s.topic for s in stored_events],
                [s.state for s in stored_events],
            ),
            prepare=True,
        )

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
