"""The commands stream edge: FastStream reads batches in the consumer group; each batch is
turned into commands, applied, answered on the results stream and acknowledged.

Results, dead letters and the XACK of a batch go out in one pipeline, after the batch's
events are stored, so a crash in between only causes a redelivery, which the receipts answer
with the original outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream.middlewares import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.annotations import RedisBatchStreamMessage
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from contracts.results import CommandResult, DeadLetter, result_encoder
from contracts.streams import DATA_FIELD
from services.keys.application import CommandProcessor, Entry
from services.keys.intake import Refused, read_entry
from services.keys.settings import KeysSettings

log = logging.getLogger(__name__)


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
    ):
        self.settings = settings
        self.processor = processor
        self.redis = redis
        self.on_stored = on_stored
        self.retry_delays = retry_delays
        self.lock = asyncio.Lock()  # one batch at a time keeps stream order

    async def handle(self, ids: Sequence[bytes], datas: Sequence[dict[bytes, bytes]]) -> None:
        async with self.lock:
            await self._handle(ids, datas)

    async def _handle(self, ids: Sequence[bytes], datas: Sequence[dict[bytes, bytes]]) -> None:
        entry_ids = [i.decode() for i in ids]
        stream = self.settings.commands_stream
        parsed = [read_entry(i, d, stream) for i, d in zip(entry_ids, datas, strict=True)]
        entries = [
            Entry(i, p)
            for i, p in zip(entry_ids, parsed, strict=True)
            if not isinstance(p, Refused)
        ]
        outcomes = await self._process(entries)
        done = {entry.entry_id: result for entry, result in outcomes}
        if outcomes:
            self.on_stored()
        results: list[CommandResult] = []
        dead: list[DeadLetter] = []
        acked: list[str] = []
        for entry_id, item in zip(entry_ids, parsed, strict=True):
            if isinstance(item, Refused):
                dead.append(item.dead_letter)
                if item.result is not None:
                    results.append(item.result)
                acked.append(entry_id)
            elif entry_id in done:
                results.append(done[entry_id])
                acked.append(entry_id)
        await self._publish(results, dead, acked)

    async def _process(self, entries: list[Entry]) -> list[tuple[Entry, CommandResult]]:
        """Results for the entries handled; an entry that keeps failing stays pending."""
        if not entries:
            return []
        for delay in (*self.retry_delays, None):
            try:
                return list(zip(entries, self.processor.process(entries), strict=True))
            except Exception:
                log.exception("batch of %d failed", len(entries))
                if delay is None:
                    break
                await asyncio.sleep(delay)
        handled: list[tuple[Entry, CommandResult]] = []
        for entry in entries:  # isolate the entry that fails; the others go on
            try:
                handled.extend(zip([entry], self.processor.process([entry]), strict=True))
            except Exception:
                log.exception("entry %s failed; left pending for redelivery", entry.entry_id)
        return handled

    async def _publish(
        self, results: list[CommandResult], dead: list[DeadLetter], acked: list[str]
    ) -> None:
        settings = self.settings
        async with self.redis.pipeline(transaction=False) as pipe:
            for result in results:
                pipe.xadd(settings.results_stream, {DATA_FIELD: result_encoder.encode(result)})
            for letter in dead:
                pipe.xadd(settings.dead_letter_stream, {DATA_FIELD: result_encoder.encode(letter)})
            if acked:
                pipe.xack(settings.commands_stream, settings.group, *acked)
            await pipe.execute()

    async def dead_letter(self, ids: Sequence[bytes], datas: Sequence[dict[bytes, bytes]],
                          deliveries: Sequence[int]) -> None:
        letters = [
            DeadLetter(
                entry_id=i.decode(),
                stream=self.settings.commands_stream,
                reason=f"handling failed {n} times",
                payload=d.get(DATA_FIELD.encode(), b"").decode("utf-8", errors="replace"),
                deliveries=n,
            )
            for i, d, n in zip(ids, datas, deliveries, strict=True)
        ]
        await self._publish([], letters, [i.decode() for i in ids])

    async def handle_redelivered(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Entries read again (own pending list, or claimed): dead-letter those over budget."""
        if not entries:
            return
        ids = [i for i, _ in entries]
        pending = await self.redis.xpending_range(
            self.settings.commands_stream, self.settings.group, min=ids[0], max=ids[-1],
            count=len(ids) * 2 + 10,
        )
        counts = {p["message_id"]: int(p["times_delivered"]) for p in pending}
        fresh = [(i, d) for i, d in entries if counts.get(i, 1) <= self.settings.max_deliveries]
        spent = [(i, d) for i, d in entries if counts.get(i, 1) > self.settings.max_deliveries]
        if spent:
            await self.dead_letter(
                [i for i, _ in spent], [d for _, d in spent], [counts[i] for i, _ in spent]
            )
        if fresh:
            await self.handle([i for i, _ in fresh], [d for _, d in fresh])

    async def recover_own_pending(self) -> int:
        """Before reading new entries: finish what this consumer had read and not acked."""
        total, start = 0, "0"
        while True:
            reply: Any = await self.redis.xreadgroup(
                self.settings.group, self.settings.consumer,
                {self.settings.commands_stream: start}, count=self.settings.batch_size,
            )
            entries: list[tuple[bytes, dict[bytes, bytes]]] = (
                [(i, d) for _, batch in reply for i, d in batch if d] if reply else []
            )
            if not entries:
                return total
            await self.handle_redelivered(entries)
            total += len(entries)
            start = entries[-1][0].decode()

    async def reclaim_forever(self) -> None:
        """Take over entries that another (crashed) consumer left pending too long."""
        idle = self.settings.reclaim_idle_ms
        while True:
            await asyncio.sleep(idle / 2000)
            try:
                start = "0-0"
                while True:
                    reply = await self.redis.xautoclaim(
                        self.settings.commands_stream, self.settings.group,
                        self.settings.consumer, min_idle_time=idle, start_id=start, count=100,
                    )
                    start, claimed = reply[0], [(i, d) for i, d in reply[1] if d]
                    await self.handle_redelivered(claimed)
                    if start in (b"0-0", "0-0"):
                        break
            except Exception:
                log.exception("reclaiming pending entries failed")


async def keep_raw(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """Skip FastStream's body decoding (it fails on bytes that are not UTF-8): entries are
    read from the raw batch by `read_entry`, which dead-letters what is not a command."""
    parsed = await original({**message, "data": []})
    parsed.raw_message = message
    return parsed


def build_broker(settings: KeysSettings, consumer: CommandConsumer) -> RedisBroker:
    quiet = logging.getLogger("apikeys.keys.broker")
    quiet.setLevel(logging.WARNING)
    broker = RedisBroker(settings.redis_url, logger=quiet)
    source = StreamSub(
        settings.commands_stream,
        group=settings.group,
        consumer=settings.consumer,
        batch=True,
        max_records=settings.batch_size,
        polling_interval=1000,
    )

    @broker.subscriber(
        stream=source, ack_policy=AckPolicy.MANUAL, include_in_schema=False, parser=keep_raw
    )
    async def on_commands(message: RedisBatchStreamMessage) -> None:
        raw = message.raw_message
        await consumer.handle(raw["message_ids"], raw["data"])

    return broker
