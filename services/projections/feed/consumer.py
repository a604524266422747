"""Folds entries of the events stream into the live model and saves each batch.

No consumer group: the position lives with the view, written in the same transaction as its rows,
so a restart resumes exactly after the last stored batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from contracts.events import event_decoder
from services.projections.feed.catchup import EventsMissing, Gap, gap_before
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
    Raises ``EventsMissing`` at a gap, having folded the entries before it.
    """
    touched, gap = fold_until_gap(model, entries, rows)
    if gap is not None:
        raise EventsMissing(gap)
    return touched


def fold_until_gap(
    model: ReadModel, entries: Sequence[Entry], rows: list[EventRow] | None = None
) -> tuple[list[Touched], Gap | None]:
    """Fold entries up to the first that shows events missing before it (that one and the
    rest are left unapplied: nothing is ever skipped), and say where that gap is."""
    with gc_policy.paused():
        return _fold(model, entries, rows)


def _fold(
    model: ReadModel, entries: Sequence[Entry], rows: list[EventRow] | None
) -> tuple[list[Touched], Gap | None]:
    touched: list[Touched] = []
    fold_event, decode = apply, event_decoder.decode
    for index, (entry_id, fields) in enumerate(entries):
        data = data_field(fields)
        event = decoded(entry_id, data, decode)
        if event is not None:
            if gap_before(event.previous_position, event.position, model.position):
                return touched, Gap(model.position, event.previous_position or 0, index)
            change = fold_event(model, event)
            if change is not None:
                touched.append(change)
                if rows is not None:
                    rows.append(event_row(event, data))
        # the cursor follows the stream even past entries that changed nothing
        position = entry_position(entry_id)
        if position > model.position:
            model.position = position
    return touched, None


async def apply_batch(live: LiveReadModel, store: ViewStore, entries: Sequence[Entry]) -> int:
    """Fold and save a batch; at a gap, what came before it is saved, then ``EventsMissing``."""
    before = live.model.position
    rows: list[EventRow] = []
    touched, gap = fold_until_gap(live.model, entries, rows)
    if live.model.position > before:
        await asyncio.to_thread(store.save, batch_for(live.model, touched, rows))
        live.advanced()
    await gc_policy.release(live.model)
    if gap is not None:
        raise EventsMissing(gap)
    return len(touched)
