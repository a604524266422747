"""The event store: an eventsourcing Application configured from one URL, and the few
queries the library does not offer (the position of a given stored event)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from services.common.store_url import SqliteUrl, parse_store_url

# Same tables and bytes as the library's own classes, fewer steps per batch (see the modules).
SQLITE_RECORDER_TOPIC = "services.keys.recorders:BatchSQLiteApplicationRecorder"
POSTGRES_RECORDER_TOPIC = "services.keys.recorders:ArraysPostgresApplicationRecorder"
TRANSCODER_TOPIC = "services.keys.transcoder:FastJSONTranscoder"
POSTGRES_FACTORY_TOPIC = "services.keys.postgres_store:LivelyPostgresFactory"


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
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_CONNECT_TIMEOUT": "3",
        "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER_TOPIC,
        "TRANSCODER_TOPIC": TRANSCODER_TOPIC,
    }
    if target.schema:
        env["POSTGRES_SCHEMA"] = target.schema
    return env


class ApiKeysApplication(Application[UUID]):
    """The write model's store. Its name gives the PostgreSQL table `apikeys_events`."""

    name = "ApiKeys"

    def __init__(self, url: str, **extra_env: Any):
        super().__init__(env={**persistence_env(url), **extra_env})

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """The global position (notification id) of one stored event."""
        recorder = self.recorder
        if isinstance(recorder, SQLiteApplicationRecorder):
            select = (
                f"SELECT rowid FROM {recorder.events_table_name} "  # noqa: S608
                "WHERE originator_id=? AND originator_version=?"
            )
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(select, (originator_id.hex, version))
                row = cursor.fetchone()
                return int(row[0]) if row else None
        if isinstance(recorder, PostgresApplicationRecorder):
            sql = SQL(
                "SELECT notification_id FROM {}.{} WHERE originator_id=%s AND originator_version=%s"
            ).format(
                Identifier(recorder.datastore.schema or "public"),
                Identifier(recorder.events_table_name),
            )
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(sql, (originator_id, version))
                row = cursor.fetchone()
                return int(row["notification_id"]) if row else None
        raise TypeError(f"no position lookup for {type(recorder).__name__}")

    def last_position(self, topics: tuple[str, ...]) -> int:
        """The position of the newest stored event with one of ``topics`` (0 if none)."""
        recorder = self.recorder
        marks = ", ".join("?" for _ in topics)
        if isinstance(recorder, SQLiteApplicationRecorder):
            select = (
                f"SELECT rowid FROM {recorder.events_table_name} "  # noqa: S608
                f"WHERE topic IN ({marks}) ORDER BY rowid DESC LIMIT 1"
            )
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(select, topics)
                row = cursor.fetchone()
                return int(row[0]) if row else 0
        if isinstance(recorder, PostgresApplicationRecorder):
            sql = SQL(
                "SELECT notification_id FROM {}.{} WHERE topic = ANY(%s) "
                "ORDER BY notification_id DESC LIMIT 1"
            ).format(
                Identifier(recorder.datastore.schema or "public"),
                Identifier(recorder.events_table_name),
            )
            with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
                cursor.execute(sql, (list(topics),))
                row = cursor.fetchone()
                return int(row["notification_id"]) if row else 0
        raise TypeError(f"no position lookup for {type(recorder).__name__}")
