"""The view store: the read model's rows, its event log and its position, in SQLite or
PostgreSQL (``open_store`` chooses by URL); the schema that both share is in ``schema``."""

from __future__ import annotations

from services.common.store_url import SqliteUrl, parse_store_url
from services.projections.store.schema import DEFAULT_PREFIX
from services.projections.store.sql import SqlViewStore


def open_store(url: str, prefix: str = DEFAULT_PREFIX) -> SqlViewStore:
    target = parse_store_url(url)
    if isinstance(target, SqliteUrl):
        from services.projections.store.sqlite import SqliteViewStore

        return SqliteViewStore(target.path, prefix)
    from services.projections.store.postgres import PostgresViewStore

    return PostgresViewStore(target, prefix)
