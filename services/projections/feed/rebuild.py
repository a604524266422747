"""The rebuild: the whole events stream folded into a fresh model, which then replaces the
store's rows and event log in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from redis import Redis as SyncRedis

from contracts import events as ev
from contracts.events import event_decoder
from services.projections.feed.entries import RawEntry, data_field, decoded, entry_position
from services.projections.model import gc_policy
from services.projections.model.fold import apply
from services.projections.model.state import ReadModel
from services.projections.runtime.settings import Settings
from services.projections.store import open_store
from services.projections.store.batch import full_batch
from services.projections.store.event_log import EventRow, event_row
from services.projections.store.sql import SqlViewStore

REBUILD_CHUNK = 5000


def rebuild(settings: Settings) -> int:
    """Rebuild the read model from the whole events stream, replacing the store's content.

    Returns how many events changed the model.
    """
    store = open_store(settings.view_store, settings.view_table_prefix)
    try:
        return rebuild_into(store, settings)
    finally:
        store.close()


def rebuild_into(store: SqlViewStore, settings: Settings) -> int:
    """Fold the whole events stream and replace the store's rows and event log with the result."""
    rows: list[EventRow] = []
    fold = HistoryFold(ReadModel(), rows)
    start = "-"
    # the whole rebuild allocates without reference cycles: no collector passes over the model
    with gc_policy.paused(), SyncRedis.from_url(settings.redis_url) as redis:
        # XRANGE's reply as it comes (entry id, flat field list): no dict per entry
        redis.set_response_callback("XRANGE", _raw_reply)
        while True:
            entries = redis.xrange(settings.events_stream, min=start, count=REBUILD_CHUNK)
            fold.feed(entries)
            if len(entries) < REBUILD_CHUNK:
                break
            last_id = entries[-1][0]
            start = "(" + (last_id.decode() if isinstance(last_id, bytes) else last_id)
        model = fold.finish()
    store.replace(full_batch(model, rows))
    return len(rows)


def _raw_reply(response: Any, **options: Any) -> Any:
    return response


class HistoryFold:
    """Folds raw XRANGE entries (``[id, [field, value, ...]]``) of a rebuild into a fresh model.

    The same model and event-log rows as ``fold_entries``, with less work: every event is
    decoded (an undecodable one is passed over, as live) and gets its event-log row, but a
    key's state is put once, from its last event, when ``finish`` is called. That is exact
    because in a rebuild nothing reads a key's state while folding: an organization event only
    drops compiled grants, and a fresh model has none (checked); and keys are independent of
    each other unless two keys share a secret hash: then the pending keys are put (in stream
    order) before that event, which is applied at once, as ``apply`` would.
    """

    def __init__(self, model: ReadModel, rows: list[EventRow]) -> None:
        if model.grant_cache or model.org_indexes:
            raise ValueError("a history fold starts from a model with no compiled grants")
        self.model = model
        self.rows = rows
        self.position = model.position
        self._pending: dict[str, ev.AnyEvent] = {}  # key id -> its last event not yet put
        self._owners: dict[str, str] = {}  # secret hash -> key id, over the pending events

    def feed(self, entries: Sequence[RawEntry]) -> None:
        with gc_policy.paused():
            self._feed(entries)

    def _feed(self, entries: Sequence[RawEntry]) -> None:
        model, pending = self.model, self._pending
        fold_event, decode, key_event = apply, event_decoder.decode, ev.KeyEvent
        row, append = event_row, self.rows.append
        position = self.position
        for entry_id, fields in entries:
            data = data_field(fields)
            event = decoded(entry_id, data, decode)
            if event is not None and event.position > position:
                append(row(event, data))
                if isinstance(event, key_event):
                    whole = cast(ev.AnyEvent, event)  # a KeyEvent is one of AnyEvent's kinds
                    if self._shares_a_secret(event.key_id, event.key):
                        # put the pending keys, then this event, in stream order
                        self._put_pending(position)
                        model.position = position
                        fold_event(model, whole)
                    else:
                        pending[event.key_id] = whole
                    position = event.position
                else:
                    model.position = position
                    fold_event(model, event)
            # the cursor follows the stream even past entries that changed nothing
            at = entry_position(entry_id)
            if at > position:
                position = at
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

    def finish(self) -> ReadModel:
        """Put the pending keys; the model is then the one ``fold_entries`` would have built."""
        with gc_policy.paused():
            self._put_pending(self.position)
        return self.model

    def _put_pending(self, position: int) -> None:
        """Each pending key's last event through ``apply``, in stream order."""
        model = self.model
        model.position = 0  # below every pending event, which ``apply`` then moves up
        try:
            for event in sorted(self._pending.values(), key=_event_position):
                apply(model, event)
        finally:
            model.position = position
        self._pending.clear()
        self._owners.clear()


def _event_position(event: ev.AnyEvent) -> int:
    return event.position
