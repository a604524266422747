"""Follows the events stream with XREAD from the stored position and folds each batch.

No consumer group: the position lives with the view, written in the same transaction as its rows,
so a restart resumes exactly after the last stored batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, cast

import msgspec

from contracts import events as ev
from contracts.events import event_decoder
from contracts.streams import DATA_FIELD, entry_id_to_position, position_to_entry_id
from services.projections import collector, rules
from services.projections.event_rows import EventRow, event_row
from services.projections.live import LiveReadModel
from services.projections.views import ViewStore, batch_for

log = logging.getLogger(__name__)
_DATA = DATA_FIELD.encode()

Entry = tuple[bytes | str, dict[Any, Any]]


def stream_cursor(position: int) -> str:
    return position_to_entry_id(position) if position > 0 else "0-0"


def fold_entries(
    model: rules.ReadModel, entries: Sequence[Entry], rows: list[EventRow] | None = None
) -> list[rules.Touched]:
    """Fold stream entries into the model; an undecodable entry is logged and passed over.

    Every event that changed the model is appended to ``rows`` (the event log) when given.
    """
    with collector.paused():
        return _fold(model, entries, rows)


def _fold(
    model: rules.ReadModel, entries: Sequence[Entry], rows: list[EventRow] | None
) -> list[rules.Touched]:
    touched = []
    apply, decode = rules.apply, event_decoder.decode
    for entry_id, fields in entries:
        data = _data_field(fields)
        event = _decoded(entry_id, data, decode)
        if event is not None:
            change = apply(model, event)
            if change is not None:
                touched.append(change)
                if rows is not None:
                    rows.append(event_row(event, data))
        # the cursor follows the stream even past entries that changed nothing
        position = _entry_position(entry_id)
        if position > model.position:
            model.position = position
    return touched


class HistoryFold:
    """Folds raw XRANGE entries (``[id, [field, value, ...]]``) of a rebuild into a fresh model.

    The same model and event-log rows as ``fold_entries``, with less work: every event is
    decoded (an undecodable one is passed over, as live) and gets its event-log row, but a
    key's state is put once, from its last event, when ``finish`` is called. That is exact
    because in a rebuild nothing reads a key's state while folding: an organization event only
    drops compiled grants, and a fresh model has none (checked); and keys are independent of
    each other unless two keys share a secret hash: then the pending keys are put (in stream
    order) before that event, which is applied at once, as ``rules.apply`` would.
    """

    def __init__(self, model: rules.ReadModel, rows: list[EventRow]) -> None:
        if model.grant_cache or model.org_indexes:
            raise ValueError("a history fold starts from a model with no compiled grants")
        self.model = model
        self.rows = rows
        self.position = model.position
        self._pending: dict[str, ev.AnyEvent] = {}  # key id -> its last event not yet put
        self._owners: dict[str, str] = {}  # secret hash -> key id, over the pending events

    def feed(self, entries: Sequence[RawEntry]) -> None:
        with collector.paused():
            self._feed(entries)

    def _feed(self, entries: Sequence[RawEntry]) -> None:
        model, pending = self.model, self._pending
        apply, decode, key_event = rules.apply, event_decoder.decode, ev.KeyEvent
        row, append = event_row, self.rows.append
        position = self.position
        for entry_id, fields in entries:
            data = _data_field(fields)
            event = _decoded(entry_id, data, decode)
            if event is not None and event.position > position:
                append(row(event, data))
                if isinstance(event, key_event):
                    whole = cast(ev.AnyEvent, event)  # a KeyEvent is one of AnyEvent's kinds
                    if self._shares_a_secret(event.key_id, event.key):
                        # put the pending keys, then this event, in stream order
                        self._put_pending(position)
                        model.position = position
                        apply(model, whole)
                    else:
                        pending[event.key_id] = whole
                    position = event.position
                else:
                    model.position = position
                    apply(model, event)
            # the cursor follows the stream even past entries that changed nothing
            entry_position = _entry_position(entry_id)
            if entry_position > position:
                position = entry_position
        self.position = model.position = position

    def _shares_a_secret(self, key_id: str, state: ev.KeyState) -> bool:
        """Whether a hash this key points at (the current one, and the previous one while it
        has one) is or was another key's: then keys must be put in stream order."""
        previous = state.previous_secret_sha256
        shas = (state.secret_sha256, previous) if previous else (state.secret_sha256,)
        shared = False
        for sha in shas:
            owner = self._owners.get(sha)
            if owner is None:
                ref = self.model.secrets.get(sha)
                if ref is not None and ref.key_id != key_id:
                    shared = True
                self._owners[sha] = key_id
            elif owner != key_id:
                shared = True
        return shared

    def finish(self) -> rules.ReadModel:
        """Put the pending keys; the model is then the one ``fold_entries`` would have built."""
        with collector.paused():
            self._put_pending(self.position)
        return self.model

    def _put_pending(self, position: int) -> None:
        """Each pending key's last event through ``rules.apply``, in stream order."""
        model = self.model
        model.position = 0  # below every pending event, which ``apply`` then moves up
        try:
            for event in sorted(self._pending.values(), key=_event_position):
                rules.apply(model, event)
        finally:
            model.position = position
        self._pending.clear()
        self._owners.clear()


RawEntry = Sequence[Any]


def _event_position(event: ev.AnyEvent) -> int:
    return event.position


def _decoded(entry_id: Any, data: Any, decode: Any) -> ev.AnyEvent | None:
    """The entry's event, or None (logged by entry id only) when it cannot be one."""
    try:
        if data is None:
            raise msgspec.DecodeError(f"no {DATA_FIELD} field")
        return cast(ev.AnyEvent, decode(data))
    except (msgspec.DecodeError, TypeError):
        log.error("skipping undecodable event at stream entry %r", entry_id)
        return None


def _data_field(fields: Any) -> Any:
    """The event JSON of an entry's fields: a flat [field, value, ...] list or a dict."""
    if isinstance(fields, dict):
        data = fields.get(_DATA)
        return fields.get(DATA_FIELD) if data is None else data
    for i in range(0, len(fields) - 1, 2):
        name = fields[i]
        if name in (_DATA, DATA_FIELD):
            return fields[i + 1]
    return None


def _entry_position(entry_id: bytes | str) -> int:
    if isinstance(entry_id, bytes):
        return int(entry_id.partition(b"-")[0])
    return entry_id_to_position(entry_id)


def stream_entries(reply: Any) -> list[Entry]:
    """The entries of a one-stream XREAD reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(next(iter(reply.values()))[0])
    return list(reply[0][1])


async def apply_batch(live: LiveReadModel, store: ViewStore, entries: Sequence[Entry]) -> int:
    before = live.model.position
    rows: list[EventRow] = []
    touched = fold_entries(live.model, entries, rows)
    if live.model.position > before:
        await asyncio.to_thread(store.save, batch_for(live.model, touched, rows))
        live.advanced()
    return len(touched)
