"""The SQL both view stores share: the model's rows and its position, written in one transaction
per batch. A batch whose position is at or below the stored one changes nothing, so re-applying
events after a crash has no effect.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import msgspec

from services.projections.model import gc_policy
from services.projections.model.fold import restore
from services.projections.model.state import ReadModel
from services.projections.model.values import OrganizationView, StoredKey
from services.projections.store import schema
from services.projections.store.batch import Batch
from services.projections.store.schema import DEFAULT_PREFIX, PREFIX_PATTERN

_key_decoder = msgspec.json.Decoder(StoredKey)
_org_decoder = msgspec.json.Decoder(OrganizationView)


class ViewStore(Protocol):
    def load(self) -> ReadModel: ...

    def save(self, batch: Batch) -> bool: ...

    def replace(self, batch: Batch) -> None: ...

    def drop(self) -> None: ...

    def close(self) -> None: ...


class SqlViewStore:
    """The SQL shared by both databases; subclasses give the connection and the transaction."""

    placeholder = "?"
    connection: Any

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if not PREFIX_PATTERN.match(prefix):
            raise ValueError(f"table prefix must match {PREFIX_PATTERN.pattern}: {prefix!r}")
        self.prefix = prefix
        self._read_lock = threading.Lock()

    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def _sql(self, text: str) -> str:
        return text.replace("{p}", self.prefix).replace("?", self.placeholder)

    def create_tables(self) -> None:
        with self._transaction() as cur:
            for statement in schema.create_statements():
                cur.execute(self._sql(self._ddl(statement)))

    def _ddl(self, statement: str) -> str:
        """A schema statement in this database's dialect (the shared text by default)."""
        return statement

    def load(self) -> ReadModel:
        with self._transaction() as cur:
            cur.execute(self._sql(schema.READ_POSITION))
            position = int(cur.fetchone()[0])
            cur.execute(self._sql(schema.ORGANIZATIONS.select_all()))
            orgs = {org_id: _org_decoder.decode(state) for org_id, state in cur.fetchall()}
            cur.execute(self._sql(schema.KEYS.select_all()))
            keys = {
                key_id: _key_decoder.decode(state).view(org_id)
                for key_id, org_id, state in cur.fetchall()
            }
        return restore(position, orgs, keys)

    def position(self) -> int:
        with self._transaction() as cur:
            cur.execute(self._sql(schema.READ_POSITION))
            return int(cur.fetchone()[0])

    def save(self, batch: Batch) -> bool:
        """Write the batch and its position together; False (nothing written) if already there."""
        try:
            with self._transaction() as cur:
                cur.execute(self._sql(schema.READ_POSITION))
                stored = int(cur.fetchone()[0])
                cur.execute(self._sql(schema.ADVANCE_POSITION), (batch.position, batch.position))
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
        with gc_policy.paused(), self._transaction() as cur:
            for table in schema.ROW_TABLES:
                cur.execute(self._sql(f"DELETE FROM {{p}}{table.name}"))
            cur.execute(self._sql(schema.SET_POSITION), (batch.position,))
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
        """Append the event log rows and upsert the view rows (into ``{p}<table><suffix>``),
        one statement per table for the whole batch, so PostgreSQL gets them pipelined."""
        if batch.secrets and not replacing:  # a replacement starts from empty tables
            # each touched key's secret rows are replaced whole
            cur.executemany(
                self._sql(f"DELETE FROM {{p}}{schema.SECRETS.name}{suffix} WHERE key_id = ?"),
                [(key_id,) for key_id, _ in batch.secrets],
            )
        for table, rows in batch.table_rows():
            if rows:
                cur.executemany(self._sql(table.insert(suffix)), rows)

    def drop(self) -> None:
        with self._transaction() as cur:
            for table in schema.TABLES:
                cur.execute(self._sql(f"DROP TABLE IF EXISTS {{p}}{table.name}"))

    def close(self) -> None:
        self.connection.close()


class _AlreadyApplied(Exception):
    """Raised inside a transaction to roll it back when the batch's position is not new."""
