"""Follows the events stream with XREAD from the model's position, folds each batch into the
live model and persists it.

Outages: while Redis is unreachable the model keeps answering from memory; while the view store
is unreachable the model keeps folding, and everything it applied meanwhile is written in one
batch once the store answers (reading pauses when that backlog reaches its bound), so the
store and the memory never diverge for longer than the outage.

Gaps: when the next event names a previous position the model has not reached, the events
between are no longer on the stream; the follower stops applying, says so (``/ready``, stale
answers), has them replayed by the keys service (``Replayer``), then goes on from the stream.

Memory only (``persists=False``, every HTTP worker but one): the same folding, nothing saved;
it starts from what the store holds and the stream (or a replay) brings it the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis

from services.common.lag import parse_watermark, watermark_key
from services.common.resilience import Backoff, Outage, Worker, is_transient
from services.projections.feed.catchup import CatchUpFailed, Gap, Replayer
from services.projections.feed.consumer import fold_until_gap
from services.projections.feed.entries import Entry, stream_cursor, stream_entries
from services.projections.model import gc_policy
from services.projections.model.fold import Touched
from services.projections.runtime.freshness import Freshness
from services.projections.runtime.live import LiveReadModel
from services.projections.store.batch import Batch, batch_for_yielding
from services.projections.store.event_log import EventRow
from services.projections.store.sql import ViewStore

log = logging.getLogger(__name__)
MAX_UNSAVED_EVENTS = 200_000


class StreamFollower:
    def __init__(
        self,
        redis: Redis,
        stream: str,
        live: LiveReadModel,
        store: ViewStore,
        freshness: Freshness,
        *,
        count: int = 500,
        block_ms: int = 1000,
        max_unsaved: int = MAX_UNSAVED_EVENTS,
        replayer: Replayer | None = None,
        persists: bool = True,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.watermark = watermark_key(stream)
        self.live = live
        self.store = store
        self.freshness = freshness
        self.count = count
        self.block_ms = block_ms
        self.max_unsaved = max_unsaved
        self.unsaved_touched: list[Touched] = []
        self.unsaved_rows: list[EventRow] = []
        self.has_unsaved = False
        self.saving: asyncio.Task[None] | None = None
        self.save_backoff = Backoff(base=0.1, cap=2.0)
        self.next_attempt = 0.0
        self.needs_reload = False
        self.store_worker = Worker("view-store")
        self.replayer = replayer
        self.replay_outage = Outage("keys service (replay of missing events)", log)
        self.persists = persists

    async def run(self) -> None:
        """Run until cancelled."""
        backoff = Backoff(cap=2.0)
        while True:
            if self.needs_reload:
                await self.reload()
                if self.needs_reload:
                    await asyncio.sleep(backoff.next_delay())
                    continue
            if len(self.unsaved_rows) >= self.max_unsaved:
                await self.start_save()
                await asyncio.sleep(0.2)  # enough held in memory: wait for the store
                continue
            try:
                await self.read_once()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except CatchUpFailed as error:  # stays not ready; asks again after a while
                self.replay_outage.failed(error)
                await asyncio.sleep(backoff.next_delay())
            except Exception as error:
                if is_transient(error):
                    self.freshness.stream.failed(error)
                else:
                    log.exception("applying a batch failed; reloading the read model")
                    self.needs_reload = True
                await asyncio.sleep(backoff.next_delay())

    async def read_once(self) -> int:
        live = self.live
        # with changes waiting for the store, do not block long: the save is retried soon
        block = self.block_ms if not self.has_unsaved else min(self.block_ms, 200)
        reply = await self.redis.xread(
            {self.stream: stream_cursor(live.model.position)}, count=self.count, block=block
        )
        watermark = parse_watermark(await self.redis.hgetall(self.watermark))
        self.freshness.stream.succeeded()
        self.freshness.observed(watermark)
        with gc_policy.paused():  # the batch's events are freed by reference counting
            entries = stream_entries(reply)
            del reply
            gap = self._apply(entries)
            count = len(entries)
            del entries
        await gc_policy.release(live.model)
        if gap is not None:
            await self.catch_up(gap)
            return count
        self.freshness.caught_up()
        await self.start_save()
        if count < self.count:
            live.mark_caught_up()
        return count

    def _apply(self, entries: list[Entry]) -> Gap | None:
        """Fold entries into memory (to be saved) up to a gap, if there is one."""
        live = self.live
        before = live.model.position
        if not self.persists:  # no event log rows, nothing kept for a save
            gap = fold_until_gap(live.model, entries)[1]
        else:
            touched, gap = fold_until_gap(live.model, entries, self.unsaved_rows)
            self.unsaved_touched.extend(touched)
        if live.model.position > before:
            self.has_unsaved = self.persists
            live.advanced()
        return gap

    async def catch_up(self, gap: Gap) -> None:
        """Stop applying the stream, have the missing events replayed and fold them as they
        come; raises ``CatchUpFailed`` when they cannot be had now."""
        self.freshness.events_missing(gap.after_position, gap.up_to_position, self.remedy())
        await self.start_save()  # what came before the gap
        if self.replayer is None:
            raise CatchUpFailed("this follower has no replay")
        async for entries in self.replayer.replay(gap.after_position, gap.up_to_position):
            if self._apply(entries) is not None:
                raise CatchUpFailed("a replay with events missing from it")
            await gc_policy.release(self.live.model)
            await self.start_save()
            while len(self.unsaved_rows) >= self.max_unsaved:  # memory bounded here too
                await asyncio.sleep(0.2)
                await self.start_save()
        self.replay_outage.succeeded()

    def remedy(self) -> str:
        asking = (
            f"asking the keys service to replay them (on {self.replayer.requests_stream}); "
            "if it cannot, "
            if self.replayer is not None
            else ""
        )
        return (
            f"{asking}stop this service and run `apikeys rebuild-projections --from FILE` "
            "with FILE written by `apikeys export` (the keys service's full history)"
        )

    @property
    def saved(self) -> bool:
        """Everything applied in memory is in the store."""
        return not self.has_unsaved and self.saving is None

    async def start_save(self) -> None:
        """Write every change applied since the last save, in a thread, while folding goes
        on; during a store outage, attempts are spaced out with backoff."""
        if not self.has_unsaved or self.saving is not None:
            return
        if asyncio.get_running_loop().time() < self.next_attempt:
            return
        touched, rows = self.unsaved_touched, self.unsaved_rows
        batch = await batch_for_yielding(self.live.model, touched, rows)
        self.unsaved_touched, self.unsaved_rows, self.has_unsaved = [], [], False
        self.saving = asyncio.create_task(self._save(batch, touched, rows))

    async def _save(self, batch: Batch, touched: list[Touched], rows: list[EventRow]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await self.store_worker.run(self.store.save, batch)
            self.freshness.store.succeeded()
            self.save_backoff.reset()
        except Exception as error:
            # put the changes back, before anything folded since
            self.unsaved_touched = touched + self.unsaved_touched
            self.unsaved_rows = rows + self.unsaved_rows
            self.has_unsaved = True
            self.next_attempt = loop.time() + self.save_backoff.next_delay()
            if is_transient(error):
                self.freshness.store.failed(error)
            else:  # not an outage: start again from what the store holds
                log.exception("saving the read model failed; reloading it from the store")
                self.freshness.store.failed(error)
                self.needs_reload = True
        finally:
            self.saving = None

    async def flush(self, timeout: float) -> bool:
        """Wait (bounded) until everything applied is stored; True when it is."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.saved and asyncio.get_running_loop().time() < deadline:
            self.next_attempt = 0.0
            await self.start_save()
            if self.saving is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self.saving), 1.0)
            else:
                await asyncio.sleep(0.05)
        return self.saved

    async def reload(self) -> None:
        """Start again from the store (after an unexpected failure while applying): the
        save in flight first, then what is stored replaces memory; retried until it works."""
        if self.saving is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.saving)
        try:
            model = await asyncio.to_thread(self.store.load)
        except Exception as error:
            self.freshness.store.failed(error)
            self.needs_reload = True
            return
        self.freshness.store.succeeded()
        self.unsaved_touched, self.unsaved_rows, self.has_unsaved = [], [], False
        self.live.replace(model)
        self.needs_reload = False
