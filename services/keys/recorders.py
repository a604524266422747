"""Event store recorders that write a batch with fewer round trips than the library's, with
the same tables and the same stored bytes, so a stock eventsourcing application reads them.

Selected through eventsourcing's `APPLICATION_RECORDER_TOPIC` (see `event_store`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier


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
        select = (
            f"SELECT rowid FROM {self.events_table_name} "  # noqa: S608
            "WHERE originator_id=? AND originator_version=?"
        )
        ids = []
        for originator_id, version, _, _ in params:
            c.execute(select, (originator_id, version))
            ids.append(int(c.fetchone()[0]))
        return ids


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
