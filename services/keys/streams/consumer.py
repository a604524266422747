"""The commands stream edge: FastStream reads batches in the consumer group; each batch is
turned into commands, applied, answered on the results stream and acknowledged.

Results, dead letters, the XACK and the stored-position watermark of a batch go out in one
MULTI/EXEC, after the batch's events are stored, so a crash in between only causes a
redelivery, which the receipts answer with the original outcome.

Outages: while the event store or Redis is unreachable the batch in hand is held and retried
with backoff (nothing is answered that was not stored, nothing new is read), so commands are
applied in stream order once the outage ends. Before a new batch, entries this consumer was
given earlier and never handled (their delivery was lost with a dropped connection), or left
pending by the replica that held the partition before, are handled first.

Fencing: a batch refused by the store because another replica took the partition over
(``Fenced``) stops this consumer at once: nothing of it is answered or acknowledged, its
entries stay pending for the partition's new holder, and ``on_fenced`` is told.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from contracts.results import CommandResult, DeadLetter
from services.common import collector, metrics
from services.common.resilience import (
    Backoff,
    Outage,
    Stopping,
    Worker,
    is_transient,
    keep_trying,
)
from services.keys.processor import CommandProcessor, Entry
from services.keys.settings import KeysSettings
from services.keys.store import Fenced
from services.keys.streams.intake import Refused, read_entry
from services.keys.streams.pending import OwnPending, RawEntry
from services.keys.streams.replies import Answer, Replies, dead_letter, failures_key

log = logging.getLogger(__name__)
T = TypeVar("T")
# entries held during an outage are re-claimed this often, so no other replica takes them
HOLD_CLAIM_SECONDS = 5.0


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


class CommandConsumer:
    def __init__(
        self,
        settings: KeysSettings,
        processor: CommandProcessor,
        redis: Redis,
        on_stored: Callable[[], None] = lambda: None,
        retry_delays: Sequence[float] = (0.2, 1.0, 3.0),
        on_fenced: Callable[[Fenced], None] = lambda _: None,
    ):
        self.settings = settings
        self.processor = processor
        self.redis = redis  # a client without automatic retries: a lost EXEC reply is checked
        self.on_stored = on_stored
        self.on_fenced = on_fenced
        self.fenced: Fenced | None = None
        self.retry_delays = retry_delays
        self.lock = asyncio.Lock()  # one batch at a time keeps stream order
        self.stopping = False
        self.redis_outage = Outage("Redis (commands)", log)
        self.store_outage = Outage("event store", log)
        self.store_worker = Worker("event-store")
        self.replies = Replies(settings, redis, self.redis_outage, lambda: self.stopping)
        self.parked: set[str] = set()  # left pending after failing: not lost, retried later
        self.pending = OwnPending(settings, redis, self.parked, self._redis)

    # -- entry points -------------------------------------------------------------------------

    async def on_batch(self, ids: Sequence[bytes], datas: Sequence[dict[bytes, bytes]]) -> None:
        """A batch delivered by FastStream (new entries): older own entries go first."""
        async with self.lock:
            if self.stopping:
                return  # left pending: a restarted consumer finishes its own entries first
            try:
                recovered: set[str] = set()
                if ids and await self.pending.lost_before(ids[0].decode()):
                    await self._recover_own_pending(recovered)  # this batch's entries too
                kept = [
                    (i, d) for i, d in zip(ids, datas, strict=True) if i.decode() not in recovered
                ]
                await self._handle([i for i, _ in kept], [d for _, d in kept])
            except Stopping:
                return
            except Fenced as error:
                self._deposed(error)

    async def handle(self, ids: Sequence[bytes], datas: Sequence[dict[bytes, bytes]]) -> None:
        """Handle entries given to this consumer, in order (tests call this directly)."""
        async with self.lock:
            try:
                await self._handle(ids, datas)
            except Stopping:
                return
            except Fenced as error:
                self._deposed(error)

    async def recover_own_pending(self) -> int:
        """Finish what this consumer (or a consumer before it) was given and did not
        answer; returns how many entries were read again."""
        async with self.lock:
            try:
                return await self._recover_own_pending()
            except Stopping:
                return 0
            except Fenced as error:
                self._deposed(error)
                return 0

    def stop(self) -> None:
        self.stopping = True

    def _deposed(self, error: Fenced) -> None:
        """Another replica took the partition over: stop here, leave everything pending."""
        if self.fenced is None:
            log.warning("%s; stopping this consumer", error)
            self.fenced = error
            self.stopping = True
            self.on_fenced(error)

    # -- one batch -----------------------------------------------------------------------------

    async def _handle(self, ids: Sequence[bytes], datas: Sequence[dict[bytes, bytes]]) -> None:
        if not ids:
            return
        # A batch of imports decodes into tens of thousands of tracked objects, all freed by
        # reference counting once answered: with the collector running, each collection
        # meanwhile would walk them all. It runs once the batch is done.
        with collector.paused():
            await self._handle_paused(ids, datas)

    async def _handle_paused(
        self, ids: Sequence[bytes], datas: Sequence[dict[bytes, bytes]]
    ) -> None:
        started = time.perf_counter()
        entry_ids = [i.decode() for i in ids]
        stream = self.settings.commands_stream
        parsed = [read_entry(i, d, stream) for i, d in zip(entry_ids, datas, strict=True)]
        entries = [
            Entry(i, p)
            for i, p in zip(entry_ids, parsed, strict=True)
            if not isinstance(p, Refused)
        ]
        outcomes, spent = await self._process(entries, datas_by_id(entry_ids, datas))
        done = {entry.entry_id: result for entry, result in outcomes}
        if outcomes:
            self.on_stored()
        spent_letters = {letter.entry_id: letter for letter in spent}
        answers: list[Answer] = []
        for entry_id, item in zip(entry_ids, parsed, strict=True):
            if isinstance(item, Refused):
                answers.append(Answer(entry_id, item.result, item.dead_letter))
            elif entry_id in done:
                answers.append(Answer(entry_id, done[entry_id]))
            elif entry_id in spent_letters:
                answers.append(Answer(entry_id, dead_letter=spent_letters[entry_id]))
        stored = max((r.position for r in done.values() if r.position is not None), default=None)
        await self._publish(answers, stored)
        count_answers(answers)
        metrics.batch_size.observe(len(ids))
        metrics.batch_seconds.observe(time.perf_counter() - started)

    async def _process(
        self, entries: list[Entry], datas: dict[str, dict[bytes, bytes]]
    ) -> tuple[list[tuple[Entry, CommandResult]], list[DeadLetter]]:
        """Results for the entries handled, and dead letters for entries whose handling has
        now failed too often; an entry that fails otherwise stays pending (parked)."""
        if not entries:
            return [], []
        for delay in (*self.retry_delays, None):
            try:
                results = await self._store(entries)
                return list(zip(entries, results, strict=True)), []
            except (Stopping, Fenced):
                raise
            except Exception:
                log.exception("batch of %d failed", len(entries))
                if delay is None:
                    break
                with collector.resumed():
                    await asyncio.sleep(delay)
        handled: list[tuple[Entry, CommandResult]] = []
        spent: list[DeadLetter] = []
        for entry in entries:  # isolate the entry that fails; the others go on
            try:
                handled.extend(zip([entry], await self._store([entry]), strict=True))
            except (Stopping, Fenced):
                raise
            except Exception:
                log.exception("entry %s failed", entry.entry_id)
                letter = await self._count_failure(entry.entry_id, datas[entry.entry_id])
                if letter is not None:
                    spent.append(letter)
        return handled, spent

    async def _store(self, entries: list[Entry]) -> list[CommandResult]:
        """The batch applied and stored, off the event loop; an unreachable store is waited
        out (the entries stay pending, re-claimed so that no other replica takes them)."""
        backoff, last_claim = Backoff(cap=2.0), time.monotonic()
        while True:
            try:
                results = await self.store_worker.run(self.processor.process, entries)
                self.store_outage.succeeded()
                return results
            except Exception as error:
                if not is_transient(error):
                    raise
                self.store_outage.failed(error)
            if self.stopping:
                raise Stopping
            with collector.resumed():  # a store outage may last
                await asyncio.sleep(backoff.next_delay())
            if time.monotonic() - last_claim > HOLD_CLAIM_SECONDS:
                last_claim = time.monotonic()
                await self.pending.hold([e.entry_id for e in entries])

    async def _count_failure(self, entry_id: str, data: dict[bytes, bytes]) -> DeadLetter | None:
        """One more failed handling; a dead letter once the budget is spent, else parked."""
        count = int(
            await self._redis(lambda: self.redis.hincrby(failures_key(self.settings), entry_id, 1))
        )
        if count >= self.settings.max_deliveries:
            self.parked.discard(entry_id)
            return dead_letter(self.settings, entry_id, data, count)
        self.parked.add(entry_id)
        return None

    async def _publish(self, answers: list[Answer], stored_position: int | None = None) -> None:
        answered = await self.replies.send(answers, stored_position)
        if answered < len(answers):
            log.info("%d entries were answered before; not answered again", len(answers) - answered)
        for answer in answers:
            self.parked.discard(answer.entry_id)

    async def _redis(self, call: Callable[[], Awaitable[T]]) -> T:
        """One idempotent Redis call, retried until it answers (or we stop)."""
        return await keep_trying(call, self.redis_outage, lambda: self.stopping)

    # -- own pending entries -------------------------------------------------------------------

    async def lost_entries_idle(self, idle_ms: int) -> bool:
        """Whether own entries not parked have been pending longer than ``idle_ms``."""
        return await self.pending.lost_idle(idle_ms)

    async def _recover_own_pending(self, seen: set[str] | None = None) -> int:
        """Entries pending on other consumers taken over, then own pending entries read again
        from the oldest and handled in order (their ids are added to ``seen``)."""
        await self.pending.take_over()
        total, start = 0, "0"
        while True:
            entries = await self.pending.read_after(start)
            if not entries:
                return total
            await self._handle_redelivered(entries)
            if seen is not None:
                seen.update(i.decode() for i, _ in entries)
            total += len(entries)
            start = entries[-1][0].decode()

    async def handle_redelivered(self, entries: list[RawEntry]) -> None:
        async with self.lock:
            try:
                await self._handle_redelivered(entries)
            except Stopping:
                return
            except Fenced as error:
                self._deposed(error)

    async def _handle_redelivered(self, entries: list[RawEntry]) -> None:
        """Entries read again (own pending list, or claimed): dead-letter those whose handling
        failed too often, handle the others in order."""
        ids, datas = [i for i, _ in entries], [d for _, d in entries]
        if not ids:
            return
        key = failures_key(self.settings)
        counts = await self._redis(lambda: self.redis.hmget(key, ids))
        failures = [int(c) if c else 0 for c in counts]
        limit = self.settings.max_deliveries
        spent = [
            dead_letter(self.settings, i.decode(), d, n)
            for i, d, n in zip(ids, datas, failures, strict=True)
            if n >= limit
        ]
        if spent:
            await self._publish([Answer(s.entry_id, dead_letter=s) for s in spent])
        fresh = [(i, d) for i, d, n in zip(ids, datas, failures, strict=True) if n < limit]
        await self._handle([i for i, _ in fresh], [d for _, d in fresh])


def count_answers(answers: Sequence[Answer]) -> None:
    """The batch's answers counted by kind first: one metric update per kind, not per answer."""
    commands: Counter[tuple[str, str]] = Counter()
    letters: Counter[str] = Counter()
    for answer in answers:
        if answer.result is not None:
            commands[answer.result.type or "unknown", answer.result.status] += 1
        if answer.dead_letter is not None:
            letters[answer.dead_letter.reason] += 1
    for (kind, status), count in commands.items():
        metrics.commands.labels(kind, status).inc(count)
    for reason, count in letters.items():
        metrics.dead_letters.labels(reason).inc(count)


def datas_by_id(
    entry_ids: list[str], datas: Sequence[dict[bytes, bytes]]
) -> dict[str, dict[bytes, bytes]]:
    return dict(zip(entry_ids, datas, strict=True))
