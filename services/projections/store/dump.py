"""Every row of a view store, read back table by table (``verify-projections`` compares two)."""

from __future__ import annotations

from typing import Any

import msgspec

from services.projections.store.schema import ROW_TABLES
from services.projections.store.sql import SqlViewStore


def read_tables(store: SqlViewStore) -> dict[str, dict[str, Any]]:
    """Every row of the read model, by table and id, states decoded (key order is not compared)."""
    tables: dict[str, dict[str, Any]] = {"position": {"position": store.position()}}
    for table in ROW_TABLES:
        rows = {}
        for row in store.query(table.select_all()):
            values = [
                msgspec.json.decode(v) if isinstance(v, str) and v[:1] == "{" else v
                for v in row[1:]
            ]
            rows[str(row[0])] = values
        tables[table.name] = rows
    return tables
