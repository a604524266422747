"""Entries of the events stream: their event JSON, their decoded event, their position.

An entry comes as XREAD gives it (entry id, field dict) or as a rebuild's raw XRANGE reply gives
it (entry id, flat field list); both hold the event JSON under ``DATA_FIELD``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

import msgspec

from contracts import events as ev
from contracts.streams import DATA_FIELD, entry_id_to_position, position_to_entry_id

log = logging.getLogger(__name__)
_DATA = DATA_FIELD.encode()

Entry = tuple[bytes | str, dict[Any, Any]]
RawEntry = Sequence[Any]


def stream_cursor(position: int) -> str:
    return position_to_entry_id(position) if position > 0 else "0-0"


def stream_entries(reply: Any) -> list[Entry]:
    """The entries of a one-stream XREAD reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(next(iter(reply.values()))[0])
    return list(reply[0][1])


def decoded(entry_id: Any, data: Any, decode: Callable[[Any], Any]) -> ev.AnyEvent | None:
    """The entry's event, or None (logged by entry id only) when it cannot be one."""
    try:
        if data is None:
            raise msgspec.DecodeError(f"no {DATA_FIELD} field")
        return cast(ev.AnyEvent, decode(data))
    except (msgspec.DecodeError, TypeError):
        log.error("skipping undecodable event at stream entry %r", entry_id)
        return None


def data_field(fields: Any) -> Any:
    """The event JSON of an entry's fields: a flat [field, value, ...] list or a dict."""
    if isinstance(fields, dict):
        data = fields.get(_DATA)
        return fields.get(DATA_FIELD) if data is None else data
    for i in range(0, len(fields) - 1, 2):
        name = fields[i]
        if name in (_DATA, DATA_FIELD):
            return fields[i + 1]
    return None


def entry_position(entry_id: bytes | str) -> int:
    if isinstance(entry_id, bytes):
        return int(entry_id.partition(b"-")[0])
    return entry_id_to_position(entry_id)
