"""Stores for the read model: its rows and its position, written in one transaction per batch.

SQLite (stdlib sqlite3) or PostgreSQL (psycopg 3), chosen by URL. A batch whose position is at or
below the stored one changes nothing, so re-applying events after a crash has no effect.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import msgspec

from contracts.events import KeyState
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
    "CREATE TABLE IF NOT EXISTS {p}position (id INTEGER PRIMARY KEY,"
    " position BIGINT NOT NULL)",
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


class SqliteViewStore(SqlViewStore):
    def __init__(self, path: str, prefix: str = DEFAULT_PREFIX) -> None:
        super().__init__(prefix)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("PRAGMA journal_mode=WAL")
        # The rows and the position commit together, so a power cut can only take the view back
        # to an earlier position, which the consumer then replays: WAL's NORMAL is enough here
        # (the event store, the source of truth, keeps FULL).
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA busy_timeout=10000")
        self.create_tables()

    def _ddl(self, statement: str) -> str:
        # the event log keyed by its rowid: one b-tree fewer to write than a separate key index
        return statement.replace("position BIGINT PRIMARY KEY", "position INTEGER PRIMARY KEY")

    @contextlib.contextmanager
    def _rollback_journal(self) -> Iterator[None]:
        """A rebuild writes whole new tables: a rollback journal records only the few pages it
        overwrites, where WAL would write every new page twice (log, then checkpoint). SQLite
        stays in WAL when another connection has the database open; either way is correct.
        A rollback journal is only safe from power loss at synchronous=FULL."""
        connection = self.connection
        connection.execute("PRAGMA busy_timeout=0")  # in use elsewhere: do not wait, keep WAL
        try:
            connection.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.OperationalError:
            pass
        finally:
            connection.execute("PRAGMA busy_timeout=10000")
        connection.execute("PRAGMA synchronous=FULL")
        try:
            yield
        finally:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")

    def replace(self, batch: Batch) -> None:
        """Replace everything by the batch (a rebuild), in one transaction: the rows go into new
        tables, in key order and without secondary indexes, which then take the old tables'
        place and get their indexes; a reader sees the old content until the commit."""
        tables = {
            table: next(s for s in _SCHEMA if s.startswith(f"{_CREATE_TABLE}{table} ("))
            for table in _REPLACED
        }
        indexes = [
            s for s in _SCHEMA
            if s.startswith(_CREATE_INDEX) and any(f" ON {{p}}{t} (" in s for t in _REPLACED)
        ]
        with collector.paused(), self._rollback_journal(), self._transaction() as cur:
            for table, statement in tables.items():
                cur.execute(self._sql(f"DROP TABLE IF EXISTS {{p}}{table}_new"))
                fresh = statement.replace(
                    f"{_CREATE_TABLE}{table} (", f"CREATE TABLE {{p}}{table}_new ("
                )
                cur.execute(self._sql(self._ddl(fresh)))
            self._write_rows(cur, batch, replacing=True, suffix="_new")
            for table in tables:
                cur.execute(self._sql(f"DROP TABLE {{p}}{table}"))
                cur.execute(self._sql(f"ALTER TABLE {{p}}{table}_new RENAME TO {{p}}{table}"))
            for statement in indexes:
                cur.execute(self._sql(statement))
            cur.execute(
                self._sql("UPDATE {p}position SET position = ? WHERE id = 1"), (batch.position,)
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self.connection.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()


# the pool logs every failed attempt; the follower logs an outage once when it starts and ends
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


class PostgresViewStore(SqlViewStore):
    """Connections from a pool that checks each one before lending it and replaces broken
    ones, so the store comes back by itself after PostgreSQL was unreachable."""

    placeholder = "%s"
    POOL_SIZE = 4
    CONNECT_TIMEOUT = 5
    WAIT_SECONDS = 5.0

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        from psycopg_pool import ConnectionPool

        super().__init__(prefix)
        conninfo, schema = split_schema(url)
        options: dict[str, Any] = {"autocommit": True, "connect_timeout": self.CONNECT_TIMEOUT}
        if schema:
            options["options"] = f"-c search_path={schema}"
        self.pool = ConnectionPool(
            conninfo, kwargs=options, min_size=1, max_size=self.POOL_SIZE,
            timeout=self.WAIT_SECONDS, check=ConnectionPool.check_connection,
            reconnect_timeout=float("inf"), open=False, name="apikeys-view-store",
        )
        self.pool.open(wait=True, timeout=self.WAIT_SECONDS)
        self.create_tables()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    @contextlib.contextmanager
    def _reader(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.cursor() as cur:
            yield cur

    def close(self) -> None:
        self.pool.close()


def split_schema(url: str) -> tuple[str, str | None]:
    """`postgresql://...?schema=name` (the event store's form) -> (conninfo, schema)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    schema = query.pop("schema", [None])[0]
    if schema is not None and not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ValueError(f"schema must be a lowercase identifier, got {schema!r}")
    rest = urlencode({k: v[0] for k, v in query.items()})
    return urlunsplit(parts._replace(query=rest)), schema


def open_store(url: str, prefix: str = DEFAULT_PREFIX) -> SqlViewStore:
    if url.startswith("sqlite:///"):
        return SqliteViewStore(url.removeprefix("sqlite:///") or ":memory:", prefix)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresViewStore(url, prefix)
    raise ValueError("APIKEYS_VIEW_STORE must be sqlite:///path or postgresql://...")
