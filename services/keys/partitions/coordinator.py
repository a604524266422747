"""Who does what among the keys-service replicas, decided every ``lease_ms / 6``:

1. say this replica is alive (the registry) and count the live ones;
2. renew the leases it holds; a partition whose lease is gone is stopped at once;
3. give back partitions beyond its fair share, ceil(partitions / live replicas), after
   finishing the batch in hand (the lease is renewed until then, then released);
4. take free partitions up to its fair share, trying them from an offset of its own;
5. hold or take the relay's lease, and run or stop the relay and the trimming with it.

Starting and stopping partitions run beside the loop, so the renewals never wait on them. A
replica that dies stops renewing: its leases expire after ``lease_ms`` and the next pass of a
replica below its share takes them over, finishing the dead replica's pending entries first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.common.resilience import Outage, Stopping, cancel_all, is_transient
from services.keys.health import Readiness
from services.keys.partitions.leases import Leases, holder_name
from services.keys.partitions.registry import Registry, fair_share, registry_key
from services.keys.partitions.relay_duty import RelayDuty, relay_lease_name
from services.keys.partitions.worker import PartitionWorker
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams.broker import GRACEFUL_SECONDS

log = logging.getLogger(__name__)
PASSES_PER_LEASE = 6
# a worker's stop finishes its batch in hand (the broker's graceful stop, then the lock)
STOP_SECONDS = GRACEFUL_SECONDS + 4.0


@dataclass
class Held:
    worker: PartitionWorker
    task: asyncio.Task[None]
    leaving: bool = False  # being stopped
    renewed: bool = True  # given back: its lease is renewed until its batch in hand is done


@dataclass
class Coordinator:
    settings: KeysSettings
    app: ApiKeysApplication
    redis: Any  # a client without automatic retries, for the consumers
    lease_redis: Any
    readiness: Readiness
    held: dict[str, Held] = field(default_factory=dict)
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        settings = self.settings
        ttl = settings.lease_ms
        self.leases = Leases(self.lease_redis, holder_name(settings.consumer), ttl)
        self.registry = Registry(
            self.lease_redis, registry_key(settings.commands_stream), settings.consumer, ttl
        )
        self.streams = settings.partition_streams()
        offset = zlib.crc32(settings.consumer.encode()) % len(self.streams)
        self.order = self.streams[offset:] + self.streams[:offset]
        self.relay = RelayDuty(settings, self.app, self.lease_redis)
        self.relay_lease = relay_lease_name(settings.events_stream)
        self.outage = Outage("Redis (leases)", log)
        self.passing: asyncio.Task[None] | None = None

    # -- the loop -------------------------------------------------------------------------

    def start(self) -> None:
        self.passing = asyncio.create_task(self._run(), name="partitions")

    async def _run(self) -> None:
        every = self.settings.lease_ms / 1000 / PASSES_PER_LEASE
        while True:
            try:
                await self.one_pass()
                self.outage.succeeded()
            except Exception as error:
                if not is_transient(error):
                    log.exception("coordinating the partitions failed")
                else:
                    self.outage.failed(error)
            await asyncio.sleep(every)

    async def one_pass(self) -> None:
        share = fair_share(len(self.streams), await self.registry.heartbeat())
        for stream, held in list(self.held.items()):
            if held.leaving:
                if held.renewed:
                    await self.leases.renew(stream)  # until its batch in hand is done
            elif held.task.done():
                self._let_go(stream, release=True)  # ended by itself: fenced, stalled, failed
            elif not await self.leases.renew(stream):
                log.warning("partition %s: lease lost; stopping it", stream)
                self._let_go(stream, release=False)
        active = [s for s, h in self.held.items() if not h.leaving]
        for stream in sorted(active, reverse=True)[: max(0, len(active) - share)]:
            log.info("partition %s: given back (fair share %d)", stream, share)
            self._let_go(stream, release=True)
        await self._take(share - len([h for h in self.held.values() if not h.leaving]))
        await self._relay_pass()

    async def _take(self, wanted: int) -> None:
        for stream in self.order:
            if wanted <= 0:
                return
            if stream not in self.held and await self.leases.acquire(stream):
                self._start(stream)
                wanted -= 1

    async def _relay_pass(self) -> None:
        if self.relay.running:
            if not await self.leases.renew(self.relay_lease):
                log.warning("relay lease lost; stopping the relay here")
                await self.relay.stop()
        elif await self.leases.acquire(self.relay_lease):
            self.relay.start()

    # -- partitions -------------------------------------------------------------------------

    def _start(self, stream: str) -> None:
        worker = PartitionWorker(
            stream,
            self.settings,
            self.app,
            self.redis,
            self.readiness,
            self.relay.wake,
        )
        task = asyncio.create_task(self._work(worker), name=f"partition {stream}")
        self.held[stream] = Held(worker, task)

    async def _work(self, worker: PartitionWorker) -> None:
        """Start the worker, then wait until it ends (fenced, or its reader stalled): the
        task's end tells the loop, which gives the partition back."""
        try:
            await worker.start()
        except Stopping:
            return
        except Exception:
            log.exception("partition %s: starting failed; giving it back", worker.stream)
            return
        await worker.ended.wait()

    def _let_go(self, stream: str, *, release: bool) -> None:
        """Stop the partition's worker beside the loop. A lease that was lost is not renewed
        meanwhile: renewing takes a free lease, and would take the partition back from the
        replica that gives it up next, for a worker that is stopping."""
        held = self.held[stream]
        held.leaving, held.renewed = True, release
        task = asyncio.create_task(self._stop(stream, held, release), name=f"stop {stream}")
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _stop(self, stream: str, held: Held, release: bool) -> None:
        """Within STOP_SECONDS the partition is off this replica's hands (whatever its worker
        still does after that is fenced off by the next holder's epoch)."""
        try:
            held.worker.stop_reading()
            try:
                await asyncio.wait_for(self._end(held), STOP_SECONDS)
            except TimeoutError:
                log.warning("partition %s: its worker did not stop in time", stream)
            if release:
                with contextlib.suppress(Exception):
                    await self.leases.release(stream)
        finally:
            if self.held.get(stream) is held:
                del self.held[stream]

    @staticmethod
    async def _end(held: Held) -> None:
        await cancel_all([held.task])
        await held.worker.stop()

    # -- stopping ---------------------------------------------------------------------------

    def stop_reading(self) -> None:
        """New batches are left pending (a signal arrived)."""
        for held in self.held.values():
            held.worker.stop_reading()

    async def stop(self) -> None:
        """Finish the batches in hand, give every lease back, leave the registry."""
        if self.passing is not None:
            await cancel_all([self.passing])
        self.stop_reading()
        for stream in [s for s, h in self.held.items() if not h.leaving]:
            self._let_go(stream, release=True)
        if self.background:
            await asyncio.gather(*self.background, return_exceptions=True)
        await self.relay.stop()
        with contextlib.suppress(Exception):
            await self.leases.release(self.relay_lease)
        with contextlib.suppress(Exception):
            await self.registry.leave()

    def holds(self) -> list[str]:
        return sorted(s for s, h in self.held.items() if not h.leaving)

    def wake_relay(self) -> Callable[[], None]:
        return self.relay.wake
