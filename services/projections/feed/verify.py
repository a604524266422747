"""``verify-projections``: rebuild in a scratch store, then compare its rows with the live store."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from services.projections.feed.rebuild import History, rebuild_into
from services.projections.runtime.settings import Settings
from services.projections.store import open_store
from services.projections.store.dump import read_tables


def differences(live: dict[str, dict[str, Any]], rebuilt: dict[str, dict[str, Any]]) -> list[str]:
    found = []
    for table in live:
        ids = sorted(set(live[table]) | set(rebuilt[table]))
        for row_id in ids:
            mine, theirs = live[table].get(row_id), rebuilt[table].get(row_id)
            if mine != theirs:
                what = "missing" if mine is None else "extra" if theirs is None else "differs"
                found.append(f"{table} {row_id}: {what} (live {mine!r}, rebuilt {theirs!r})")
    return found


def verify_projections(settings: Settings, source: History | None = None) -> int:
    """Print the differences (the first 100) or that there are none; 1 when there are some.

    The rebuild reads the history as ``rebuild-projections`` does (``source``, the stream, a
    replay of what neither holds)."""
    with tempfile.TemporaryDirectory(prefix="apikeys-verify-") as scratch:
        rebuilt_store = open_store(f"sqlite:///{Path(scratch) / 'views.db'}")
        live_store = open_store(settings.view_store, settings.view_table_prefix)
        try:
            applied = rebuild_into(rebuilt_store, settings, source)
            found = differences(read_tables(live_store), read_tables(rebuilt_store))
        finally:
            rebuilt_store.close()
            live_store.close()
    for line in found[:100]:
        print(line)
    if found:
        print(f"{len(found)} differences between the live read model and a rebuild")
        return 1
    print(f"the live read model equals a rebuild from history ({applied} events)")
    return 0
