"""Stores for the read model: its rows and its position, written in one transaction per batch.

SQLite (stdlib sqlite3) or PostgreSQL (psycopg 3), chosen by URL. A batch whose position is at or
below the stored one changes nothing, so re-applying events after a crash has no effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from contracts.events import KeyState
from services.common.store_url import SqliteUrl, parse_store_url
from services.projections import collector, rules
from services.projections.event_rows import EVENT_LOG_DDL, EventRow

DEFAULT_PREFIX = "apikeys_view_"
_PREFIX_PATTERN = re.compile(r"^apikeys_view_[a-z0-9_]*$")
_encoder = msgspec.json.Encoder()
_key_decoder = msgspec.json.Decoder(KeyState)
_org_decoder = msgspec.json.Decoder(rules.OrganizationView)


@dataclass
class Batch:
    """Rows to write, serialised from the in-memory model, and the position they reflect."""

    position: int
    keys: list[tuple[str, str, str]] = field(default_factory=list)  # key_id, org_id, state json
    organizations: list[tuple[str, str]] = field(default_factory=list)  # org_id, state json
    secrets: list[tuple[str, list[tuple[str, str, str, str | None]]]] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)  # the event log rows to append


def batch_for(
    model: rules.ReadModel,
    touched: Iterable[rules.Touched],
    events: Iterable[EventRow] = (),
) -> Batch:
    key_ids = sorted({t.key_id for t in touched if t.key_id is not None})
    org_ids = sorted({t.organization_id for t in touched if t.key_id is None})
    return _rows(Batch(model.position, events=list(events)), model, org_ids, key_ids)


async def batch_for_yielding(
    model: rules.ReadModel,
    touched: Iterable[rules.Touched],
    events: Iterable[EventRow] = (),
    chunk: int = 2000,
) -> Batch:
    """``batch_for``, yielding to the event loop every ``chunk`` keys, so that a batch of many
    keys (everything applied during a long store outage) does not hold up queries. The model
    must not change meanwhile: its one writer awaits this."""
    key_ids = sorted({t.key_id for t in touched if t.key_id is not None})
    org_ids = sorted({t.organization_id for t in touched if t.key_id is None})
    batch = _rows(Batch(model.position, events=list(events)), model, org_ids, [])
    for start in range(0, len(key_ids), chunk):
        _rows(batch, model, [], key_ids[start : start + chunk])
        await asyncio.sleep(0)
    return batch


def full_batch(model: rules.ReadModel, events: Iterable[EventRow] = ()) -> Batch:
    """Every row of the model (a rebuild)."""
    with collector.paused():
        batch = Batch(model.position, events=list(events))
        return _rows(batch, model, sorted(model.organizations), sorted(model.keys))


def _rows(batch: Batch, model: rules.ReadModel, org_ids: list[str], key_ids: list[str]) -> Batch:
    encode = _encoder.encode
    for org_id in org_ids:
        batch.organizations.append((org_id, encode(model.organizations[org_id]).decode()))
    for key_id in key_ids:
        view = model.keys[key_id]
        state = view.state
        batch.keys.append((key_id, view.organization_id, encode(state).decode()))
        rows: list[tuple[str, str, str, str | None]] = [
            (state.secret_sha256, key_id, "current", None)
        ]
        if state.previous_secret_sha256:  # the rows rules.secret_refs names, built directly
            until = state.previous_secret_valid_until
            until_text = until.isoformat() if until else None
            rows.append((state.previous_secret_sha256, key_id, "previous", until_text))
        batch.secrets.append((key_id, rows))
    return batch


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {p}keys (key_id TEXT PRIMARY KEY,"
    " organization_id TEXT NOT NULL, state TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS {p}keys_org ON {p}keys (organization_id)",
    "CREATE TABLE IF NOT EXISTS {p}organizations (organization_id TEXT PRIMARY KEY,"
    " state TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {p}secrets (sha256 TEXT PRIMARY KEY,"
    " key_id TEXT NOT NULL, kind TEXT NOT NULL, valid_until TEXT)",
    "CREATE INDEX IF NOT EXISTS {p}secrets_key ON {p}secrets (key_id)",
    "CREATE TABLE IF NOT EXISTS {p}position (id INTEGER PRIMARY KEY, position BIGINT NOT NULL)",
    "INSERT INTO {p}position (id, position) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    *EVENT_LOG_DDL,
)
# the tables a rebuild replaces whole (their secondary indexes are created after the rows)
_REPLACED = ("event_log", "organizations", "keys", "secrets")
_CREATE_TABLE = "CREATE TABLE IF NOT EXISTS {p}"
_CREATE_INDEX = "CREATE INDEX IF NOT EXISTS {p}"


class ViewStore(Protocol):
    def load(self) -> rules.ReadModel: ...

    def save(self, batch: Batch) -> bool: ...

    def replace(self, batch: Batch) -> None: ...

    def drop(self) -> None: ...

    def close(self) -> None: ...


class SqlViewStore:
    """The SQL shared by both databases; subclasses give the connection and the transaction."""

    placeholder = "?"
    connection: Any

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not _PREFIX_PATTERN.match(prefix):
            raise ValueError(f"table prefix must match {_PREFIX_PATTERN.pattern}: {prefix!r}")
        self.prefix = prefix
        self._read_lock = threading.Lock()

    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _sql(self, text: str) -> str:
        return text.replace("{p}", self.prefix).replace("?", self.placeholder)

    def create_tables(self) -> None:
        with self._transaction() as cur:
            for statement in _SCHEMA:
                cur.execute(self._sql(self._ddl(statement)))

    def _ddl(self, statement: str) -> str:
        """A schema statement in this database's dialect (the shared text by default)."""
        return statement

    def load(self) -> rules.ReadModel:
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT position FROM {p}position WHERE id = 1"))
            position = int(cur.fetchone()[0])
            cur.execute(self._sql("SELECT organization_id, state FROM {p}organizations"))
            orgs = {org_id: _org_decoder.decode(state) for org_id, state in cur.fetchall()}
            cur.execute(self._sql("SELECT key_id, organization_id, state FROM {p}keys"))
            keys = {
                key_id: rules.KeyView(org_id, _key_decoder.decode(state))
                for key_id, org_id, state in cur.fetchall()
            }
        return rules.restore(position, orgs, keys)

    def position(self) -> int:
        with self._transaction() as cur:
            cur.execute(self._sql("SELECT position FROM {p}position WHERE id = 1"))
            return int(cur.fetchone()[0])

    def save(self, batch: Batch) -> bool:
        """Write the batch and its position together; False (nothing written) if already there."""
        try:
            with self._transaction() as cur:
                cur.execute(self._sql("SELECT position FROM {p}position WHERE id = 1"))
                stored = int(cur.fetchone()[0])
                cur.execute(
                    self._sql("UPDATE {p}position SET position = ? WHERE id = 1 AND position < ?"),
                    (batch.position, batch.position),
                )
                if cur.rowcount != 1:
                    raise _AlreadyApplied
                if batch.events and batch.events[0][0] <= stored:
                    # a save whose commit was not confirmed did go through: its log rows stay
                    batch.events = [row for row in batch.events if row[0] > stored]
                self._write_rows(cur, batch)
        except _AlreadyApplied:
            return False
        return True

    def replace(self, batch: Batch) -> None:
        """Replace everything by the batch (a rebuild), in one transaction."""
        with collector.paused(), self._transaction() as cur:
            for table in ("keys", "organizations", "secrets", "event_log"):
                cur.execute(self._sql(f"DELETE FROM {{p}}{table}"))
            cur.execute(
                self._sql("UPDATE {p}position SET position = ? WHERE id = 1"), (batch.position,)
            )
            self._write_rows(cur, batch, replacing=True)

    def query(self, text: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement (``{p}`` is the table prefix, ``?`` a parameter)."""
        # one statement reads one snapshot: no write lock (BEGIN IMMEDIATE) for readers
        with self._reader() as cur:
            cur.execute(self._sql(text), params)
            return list(cur.fetchall())

    @contextlib.contextmanager
    def _reader(self) -> Iterator[Any]:
        with self._read_lock:
            cur = self.connection.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def _write_rows(
        self, cur: Any, batch: Batch, replacing: bool = False, suffix: str = ""
    ) -> None:
        """Append the event log rows and upsert the view rows (into ``{p}<table><suffix>``)."""
        sql = self._suffixed(suffix)
        if batch.events:
            cur.executemany(
                sql(
                    "INSERT INTO {p}event_log{s} (position, organization_id, key_id, type,"
                    " occurred_at, event) VALUES (?, ?, ?, ?, ?, ?)"
                ),
                batch.events,
            )
        if batch.organizations:
            cur.executemany(
                sql(
                    "INSERT INTO {p}organizations{s} (organization_id, state) VALUES (?, ?)"
                    " ON CONFLICT (organization_id) DO UPDATE SET state = excluded.state"
                ),
                batch.organizations,
            )
        if batch.keys:
            cur.executemany(
                sql(
                    "INSERT INTO {p}keys{s} (key_id, organization_id, state) VALUES (?, ?, ?)"
                    " ON CONFLICT (key_id) DO UPDATE SET organization_id ="
                    " excluded.organization_id, state = excluded.state"
                ),
                batch.keys,
            )
        if batch.secrets:
            # Each touched key's secret rows are replaced whole: one statement per kind of
            # change for the whole batch, so PostgreSQL gets them pipelined.
            if not replacing:  # a replacement starts from empty tables
                cur.executemany(
                    sql("DELETE FROM {p}secrets{s} WHERE key_id = ?"),
                    [(key_id,) for key_id, _ in batch.secrets],
                )
            fresh = [row for _, rows in batch.secrets for row in rows]
            if fresh:
                cur.executemany(
                    sql(
                        "INSERT INTO {p}secrets{s} (sha256, key_id, kind, valid_until)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET"
                        " key_id = excluded.key_id, kind = excluded.kind,"
                        " valid_until = excluded.valid_until"
                    ),
                    fresh,
                )

    def _suffixed(self, suffix: str) -> Any:
        def sql(text: str) -> str:
            return self._sql(text.replace("{s}", suffix))

        return sql

    def drop(self) -> None:
        with self._transaction() as cur:
            for table in ("keys", "organizations", "secrets", "position", "event_log"):
                cur.execute(self._sql(f"DROP TABLE IF EXISTS {{p}}{table}"))

    def close(self) -> None:
        self.connection.close()


class _AlreadyApplied(Exception):
    """Raised inside a transaction to roll it back when the batch's position is not new."""


def open_store(url: str, prefix: str = DEFAULT_PREFIX) -> SqlViewStore:
    target = parse_store_url(url)
    if isinstance(target, SqliteUrl):
        from services.projections.views_sqlite import SqliteViewStore

        return SqliteViewStore(target.path, prefix)
    from services.projections.views_postgres import PostgresViewStore

    return PostgresViewStore(target, prefix)
