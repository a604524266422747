"""The read-model store on SQLite (stdlib sqlite3), one connection in WAL mode."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from services.projections.model import gc_policy
from services.projections.store import schema
from services.projections.store.batch import Batch
from services.projections.store.schema import DEFAULT_PREFIX
from services.projections.store.sql import SqlViewStore

WAL_PAGES = 10_000  # pages written to the log between two checkpoints (40 MB of 4 KB pages)
WAL_BYTES = 64 * 1024 * 1024  # the log file's size kept after a checkpoint, at most


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
        # A save of many keys dirties thousands of index pages (key ids and secret hashes land
        # all over their b-trees): checkpointing every 1,000 pages (SQLite's default) copied
        # nearly every save's pages a second time. The log may grow to WAL_PAGES pages between
        # checkpoints and is cut back to WAL_BYTES after one.
        self.connection.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        self.connection.execute(f"PRAGMA journal_size_limit={WAL_BYTES}")
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
        with gc_policy.paused(), self._rollback_journal(), self._transaction() as cur:
            for table in schema.ROW_TABLES:
                cur.execute(self._sql(f"DROP TABLE IF EXISTS {{p}}{table.name}_new"))
                cur.execute(self._sql(self._ddl(table.create_fresh("_new"))))
            self._write_rows(cur, batch, replacing=True, suffix="_new")
            for table in schema.ROW_TABLES:
                name = table.name
                cur.execute(self._sql(f"DROP TABLE {{p}}{name}"))
                cur.execute(self._sql(f"ALTER TABLE {{p}}{name}_new RENAME TO {{p}}{name}"))
            for table in schema.ROW_TABLES:
                for statement in table.create_indexes():
                    cur.execute(self._sql(statement))
            cur.execute(self._sql(schema.SET_POSITION), (batch.position,))

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
