"""The rebuild: the whole history folded into a fresh model, which then replaces the store's
rows and event log in one transaction. The history is a file of events (``--from``, as
``apikeys export`` writes it) if given, then the events stream; what neither holds (the stream
trimmed past the file's end, or past the start) is replayed by the keys service on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, cast

from contracts import events as ev
from contracts.events import event_decoder
from contracts.streams import position_to_entry_id
from services.common.redis_client import connect
from services.projections.feed.catchup import (
    CatchUpFailed,
    Gap,
    Replayer,
    file_entries,
    gap_before,
)
from services.projections.feed.entries import RawEntry, data_field, decoded, entry_position
from services.projections.model import gc_policy
from services.projections.model.fold import apply, next_meta
from services.projections.model.state import ReadModel
from services.projections.model.values import KeyMeta
from services.projections.runtime.settings import Settings
from services.projections.store import open_store
from services.projections.store.batch import full_batch
from services.projections.store.event_log import EventRow, event_row
from services.projections.store.sql import SqlViewStore

REBUILD_CHUNK = 5000
History = Iterable[str | bytes]  # lines of event JSON


def rebuild(settings: Settings, source: History | None = None) -> int:
    """Rebuild the read model from the whole history, replacing the store's content.

    Returns how many events changed the model.
    """
    store = open_store(settings.view_store, settings.view_table_prefix)
    try:
        return rebuild_into(store, settings, source)
    finally:
        store.close()


def rebuild_into(store: SqlViewStore, settings: Settings, source: History | None = None) -> int:
    """Fold the whole history and replace the store's rows and event log with the result."""
    rows: list[EventRow] = []
    # the whole rebuild allocates without reference cycles: no collector passes over the model
    with gc_policy.paused():
        model = asyncio.run(_history(HistoryFold(ReadModel(), rows), settings, source))
    store.replace(full_batch(model, rows))
    return len(rows)


async def _history(fold: HistoryFold, settings: Settings, source: History | None) -> ReadModel:
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    # XRANGE's reply as it comes (entry id, flat field list): no dict per entry
    redis.set_response_callback("XRANGE", _raw_reply)
    replayer = Replayer(
        redis, settings.replay_requests_stream, timeout_seconds=settings.replay_timeout_seconds
    )
    try:
        if source is not None:
            for lines in file_entries(source, REBUILD_CHUNK):
                await _fold_catching_up(fold, lines, replayer)
        start = "(" + position_to_entry_id(fold.position) if fold.position else "-"
        while True:
            entries: Any = await redis.xrange(
                settings.events_stream, min=start, count=REBUILD_CHUNK
            )
            await _fold_catching_up(fold, entries, replayer)
            if len(entries) < REBUILD_CHUNK:
                break
            last_id = entries[-1][0]
            start = "(" + (last_id.decode() if isinstance(last_id, bytes) else last_id)
        return fold.finish()
    finally:
        await redis.aclose()


async def _fold_catching_up(
    fold: HistoryFold, entries: Sequence[RawEntry], replayer: Replayer
) -> None:
    """Fold the entries; what is missing before one of them is replayed first."""
    while entries:
        gap = fold.feed(entries)
        if gap is None:
            return
        try:
            async for replayed in replayer.replay(gap.after_position, gap.up_to_position):
                if fold.feed(replayed) is not None:
                    raise CatchUpFailed("a replay with events missing from it")
        except CatchUpFailed as error:
            raise CatchUpFailed(
                f"{gap} are neither in the file nor on the events stream, and {error}; "
                f"start the keys service, or rebuild --from a file of `apikeys export`"
            ) from None
        entries = entries[gap.index :]


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
        # key id -> its created/changed facts over all its events (the last one alone does not
        # say who created the key, nor when)
        self._metas: dict[str, KeyMeta] = {}

    def feed(self, entries: Sequence[RawEntry]) -> Gap | None:
        """Fold the entries up to the first that shows events missing before it; that gap."""
        with gc_policy.paused():
            return self._feed(entries)

    def _feed(self, entries: Sequence[RawEntry]) -> Gap | None:
        model, pending = self.model, self._pending
        fold_event, decode, key_event = apply, event_decoder.decode, ev.KeyEvent
        row, append = event_row, self.rows.append
        position = self.position
        gap = None
        for index, (entry_id, fields) in enumerate(entries):
            data = data_field(fields)
            event = decoded(entry_id, data, decode)
            if event is not None and event.position > position:
                if gap_before(event.previous_position, event.position, position):
                    gap = Gap(position, event.previous_position or 0, index)
                    break
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
                        self._follow_meta(event)
                    position = event.position
                else:
                    model.position = position
                    fold_event(model, event)
            # the cursor follows the stream even past entries that changed nothing
            at = entry_position(entry_id)
            if at > position:
                position = at
        self.position = model.position = position
        return gap

    def _follow_meta(self, event: ev.KeyEvent) -> None:
        old = self._metas.get(event.key_id)
        if old is None and event.key_id in self.model.keys:
            old = self.model.keys[event.key_id].meta
        self._metas[event.key_id] = next_meta(old, event)

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
                key_id = cast(ev.KeyEvent, event).key_id
                model.keys[key_id].meta = self._metas[key_id]
        finally:
            model.position = position
        self._pending.clear()
        self._owners.clear()
        self._metas.clear()


def _event_position(event: ev.AnyEvent) -> int:
    return event.position
