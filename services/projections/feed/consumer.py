"""Folds entries of the events stream into the live model and saves each batch.

No consumer group: the position lives with the view, written in the same transaction as its rows,
so a restart resumes exactly after the last stored batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from contracts.events import event_decoder
from services.projections.feed.entries import Entry, data_field, decoded, entry_position
from services.projections.model import gc_policy
from services.projections.model.fold import Touched, apply
from services.projections.model.state import ReadModel
from services.projections.runtime.live import LiveReadModel
from services.projections.store.batch import batch_for
from services.projections.store.event_log import EventRow, event_row
from services.projections.store.sql import ViewStore


def fold_entries(
    model: ReadModel, entries: Sequence[Entry], rows: list[EventRow] | None = None
) -> list[Touched]:
    """Fold stream entries into the model; an undecodable entry is logged and passed over.

    Every event that changed the model is appended to ``rows`` (the event log) when given.
    """
    with gc_policy.paused():
        return _fold(model, entries, rows)


def _fold(model: ReadModel, entries: Sequence[Entry], rows: list[EventRow] | None) -> list[Touched]:
    touched = []
    fold_event, decode = apply, event_decoder.decode
    for entry_id, fields in entries:
        data = data_field(fields)
        event = decoded(entry_id, data, decode)
        if event is not None:
            change = fold_event(model, event)
            if change is not None:
                touched.append(change)
                if rows is not None:
                    rows.append(event_row(event, data))
        # the cursor follows the stream even past entries that changed nothing
        position = entry_position(entry_id)
        if position > model.position:
            model.position = position
    return touched


async def apply_batch(live: LiveReadModel, store: ViewStore, entries: Sequence[Entry]) -> int:
    before = live.model.position
    rows: list[EventRow] = []
    touched = fold_entries(live.model, entries, rows)
    if live.model.position > before:
        await asyncio.to_thread(store.save, batch_for(live.model, touched, rows))
        live.advanced()
    return len(touched)
