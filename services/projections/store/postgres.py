"""The read-model store on PostgreSQL (psycopg 3), on a pool that replaces broken connections."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from services.common.postgres import LIVENESS, RECONNECT_SECONDS
from services.common.store_url import PostgresUrl
from services.projections.store.schema import DEFAULT_PREFIX
from services.projections.store.sql import SqlViewStore

# the pool logs every failed attempt; the follower logs an outage once when it starts and ends
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


class PostgresViewStore(SqlViewStore):
    """Connections from a pool that checks each one before lending it and replaces broken
    ones, so the store comes back by itself after PostgreSQL was unreachable."""

    placeholder = "%s"
    POOL_SIZE = 4
    CONNECT_TIMEOUT = 5
    WAIT_SECONDS = 5.0

    def __init__(self, target: PostgresUrl, prefix: str = DEFAULT_PREFIX) -> None:
        from psycopg_pool import ConnectionPool

        super().__init__(prefix)
        conninfo, schema = target.conninfo, target.schema
        options: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": self.CONNECT_TIMEOUT,
            **LIVENESS,
        }
        if schema:
            options["options"] = f"-c search_path={schema}"
        self.pool = ConnectionPool(
            conninfo,
            kwargs=options,
            min_size=1,
            max_size=self.POOL_SIZE,
            timeout=self.WAIT_SECONDS,
            check=ConnectionPool.check_connection,
            reconnect_timeout=RECONNECT_SECONDS,
            open=False,
            name="apikeys-view-store",
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
