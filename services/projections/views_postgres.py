"""The read-model store on PostgreSQL (psycopg 3), on a pool that replaces broken connections."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from services.common.postgres import LIVENESS, RECONNECT_SECONDS
from services.projections.views import DEFAULT_PREFIX, SqlViewStore

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


def split_schema(url: str) -> tuple[str, str | None]:
    """`postgresql://...?schema=name` (the event store's form) -> (conninfo, schema)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    schema = query.pop("schema", [None])[0]
    if schema is not None and not re.fullmatch(r"[a-z_][a-z0-9_]*", schema):
        raise ValueError(f"schema must be a lowercase identifier, got {schema!r}")
    rest = urlencode({k: v[0] for k, v in query.items()})
    return urlunsplit(parts._replace(query=rest)), schema
