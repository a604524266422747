"""The batch processor: turn a batch of commands into stored events and one result each.

Commands are applied in stream order to cached aggregates; the events of the whole batch,
each command followed by its receipt, are saved in one transaction (`app.events.put(events)`
keeps that order, so positions follow the stream). A conflict (a resent command whose receipt
exists, a key created twice, or another writer) rolls the batch back and replays it one
command at a time with fresh aggregates and receipt look-ups, which gives every command its
exact outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from contracts.commands import AnyCommand, ImportApiKeys
from contracts.results import CommandResult, Error
from services.common import collector
from services.keys.cache import AggregateCache
from services.keys.domain import ApiKey, CommandReceipt, DomainError, Organization
from services.keys.handlers import handle
from services.keys.importing import all_rejected
from services.keys.outcomes import base_result, last_event_of, receipt_for, replayed, result_from
from services.keys.recent import RecentOutcomes
from services.keys.settings import DEFAULT_CACHE_SIZE, DEFAULT_SNAPSHOT_INTERVAL
from services.keys.snapshots import SnapshotPolicy
from services.keys.store import ApiKeysApplication, Fence

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    entry_id: str
    command: AnyCommand


class BatchAborted(Exception):
    """A command failed after changing an aggregate: the whole batch is rolled back."""


@dataclass
class BatchWork:
    """The unit of work for one command inside a batch."""

    cache: AggregateCache
    careful: bool = True
    touched: dict[Any, Aggregate] = field(default_factory=dict)  # by aggregate id, in order

    def organization(self, organization_id: str) -> Organization | None:
        return self.cache.get(Organization.create_id(organization_id))

    def key(self, key_id: str) -> ApiKey | None:
        return self.cache.get(ApiKey.create_id(key_id))

    def key_exists(self, key_id: str) -> bool:
        """Optimistic unless careful: a key id that is not cached is taken to be new, and the
        store's uniqueness check at save time (a conflict replays the batch carefully) makes
        sure of it. This saves one store round trip per created key."""
        aggregate_id = ApiKey.create_id(key_id)
        if self.careful:
            return self.cache.get(aggregate_id) is not None
        return self.cache.cached(aggregate_id) is not None

    def touch(self, *aggregates: Organization | ApiKey) -> None:
        for aggregate in aggregates:
            self.touched.setdefault(aggregate.id, aggregate)


@dataclass
class Planned:
    entry: Entry
    result: CommandResult
    last_event: Any = None  # the domain event whose position the result reports
    duplicate_of: int | None = None  # index of an earlier entry in the same batch


class CommandProcessor:
    def __init__(
        self,
        app: ApiKeysApplication,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache_size: int = DEFAULT_CACHE_SIZE,
        snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL,
        fence: Fence | None = None,
        exclusive: bool = False,
    ):
        """``fence``: every batch is stored only while the partition's epoch is the fence's
        (``store.fencing``). ``exclusive``: nobody else writes this processor's aggregates
        while its fence holds (one partition of several: organizations never change
        partition), so its cache stays valid without looking at what others stored."""
        self.app = app
        self.fence = fence
        self.exclusive = exclusive
        self.clock = clock
        self.snapshots = SnapshotPolicy(app, snapshot_interval)
        self.cache = AggregateCache(self.snapshots.load, cache_size)
        # outcomes of recent commands, so a redelivery is answered without a receipt read
        self.recent = RecentOutcomes(cache_size)
        self.last_written = 0

    def process(self, entries: list[Entry]) -> list[CommandResult]:
        """Apply the entries in order; return one result per entry, in the same order. Each
        part of at most ``BATCH_KEYS`` keys (imports count each of their keys) is stored in a
        transaction of its own, which bounds the memory a batch of imports holds."""
        results: list[CommandResult] = []
        for part in _parts(entries, BATCH_KEYS):
            with collector.paused():
                results.extend(self._process_batch(part))
        return results

    def _process_batch(self, entries: list[Entry]) -> list[CommandResult]:
        if not entries:
            return []
        try:
            return self._process(entries, look_up_receipts=False)
        except (IntegrityError, BatchAborted) as error:
            log.info("batch of %d replayed one by one: %s", len(entries), type(error).__name__)
            self.cache.clear()
            return [result for entry in entries for result in self._process_alone(entry)]

    def _process_alone(self, entry: Entry, attempts: int = 5) -> list[CommandResult]:
        for _ in range(attempts - 1):
            try:
                return self._process([entry], look_up_receipts=True)
            except (IntegrityError, BatchAborted):
                self.cache.clear()
        return self._process([entry], look_up_receipts=True)

    def _drop_cache_if_store_moved(self) -> None:
        """Another writer (a second replica) stored events since our last batch: what we
        cached may be stale, so start again from the store."""
        if self.exclusive:
            return
        newest = self.app.recorder.max_notification_id() or 0
        if newest != self.last_written:
            self.cache.clear()
            self.last_written = newest

    def _process(self, entries: list[Entry], *, look_up_receipts: bool) -> list[CommandResult]:
        self._drop_cache_if_store_moved()
        now = self.clock()
        planned: list[Planned] = []
        to_save: list[Any] = []
        in_batch: dict[str, int] = {}
        try:
            for entry in entries:
                command = entry.command
                earlier = in_batch.get(command.command_id)
                if earlier is not None:
                    duplicate = base_result(command, "duplicate")
                    planned.append(Planned(entry, duplicate, None, earlier))
                    continue
                known = self._known_outcome(entry, look_up_receipts)
                if known is not None:
                    planned.append(Planned(entry, known))
                    continue
                in_batch[command.command_id] = len(planned)
                plan, events = self._apply(entry, now, careful=look_up_receipts)
                planned.append(plan)
                to_save.extend(events)
            recordings = self.app.events.put(to_save, fence=self.fence) if to_save else []
        except BaseException:
            self.cache.clear()
            self.snapshots.forget()
            raise
        self.snapshots.stored(self.cache.pinned, to_save)
        self.cache.release()
        if recordings:
            # Contiguous with what we saw at the start: nobody else wrote in between.
            contiguous = recordings[0].notification.id == self.last_written + 1
            self.last_written = recordings[-1].notification.id if contiguous else -1
        positions = {id(r.domain_event): r.notification.id for r in recordings}
        return self._finish(planned, positions)

    def _apply(self, entry: Entry, now: datetime, careful: bool) -> tuple[Planned, list[Any]]:
        command = entry.command
        work = BatchWork(self.cache, careful)
        result = base_result(command, "accepted")
        try:
            result.outcomes = handle(command, work, now)
        except DomainError as error:
            if any(_has_pending(a) for a in work.touched.values()):
                raise BatchAborted(error.code) from error
            result.status = "rejected"
            result.error = Error(error.code, error.message)
            if isinstance(command, ImportApiKeys):
                result.outcomes = all_rejected(command, result.error)
        touched = work.touched.values()
        events = [event for aggregate in touched for event in aggregate.collect_events()]
        for aggregate in touched:
            self.cache.pin(aggregate)  # later commands of the batch see the change
        last = events[-1] if events else None
        receipt = receipt_for(entry.entry_id, command, result, last)
        events.append(receipt)
        return Planned(entry, result, last), events

    def _known_outcome(self, entry: Entry, look_up_receipts: bool) -> CommandResult | None:
        command_id = entry.command.command_id
        remembered = self.recent.get(command_id)
        if remembered is not None:
            entry_id, result = remembered
            return replayed(result, entry_id == entry.entry_id)
        if not look_up_receipts:
            return None
        try:
            receipt: CommandReceipt = self.app.repository.get(CommandReceipt.create_id(command_id))
        except AggregateNotFoundError:
            return None
        outcome = receipt.outcome
        original = result_from(outcome)
        last = last_event_of(outcome)
        if last is not None:
            original.position = self.app.position_of(*last)
        self._remember(command_id, outcome.entry_id, original)
        return replayed(original, outcome.entry_id == entry.entry_id)

    def _finish(self, planned: list[Planned], positions: dict[int, int]) -> list[CommandResult]:
        results: list[CommandResult] = []
        for plan in planned:
            if plan.duplicate_of is not None:
                first = results[plan.duplicate_of]
                results.append(replayed(first, same_entry=False))
                continue
            if plan.last_event is not None and plan.result.status == "accepted":
                plan.result.position = positions[id(plan.last_event)]
                self._remember(plan.entry.command.command_id, plan.entry.entry_id, plan.result)
            elif plan.result.status == "rejected":
                self._remember(plan.entry.command.command_id, plan.entry.entry_id, plan.result)
            results.append(plan.result)
        return results

    def _remember(self, command_id: str, entry_id: str, result: CommandResult) -> None:
        self.recent.remember(command_id, entry_id, result)


def _has_pending(aggregate: Aggregate) -> bool:
    return bool(aggregate.pending_events)


# most keys stored in one transaction (a command counts 1, an import each of its keys)
BATCH_KEYS = 5000


def _parts(entries: list[Entry], most: int) -> list[list[Entry]]:
    parts: list[list[Entry]] = [[]]
    weight = 0
    for entry in entries:
        command = entry.command
        size = len(command.keys) if isinstance(command, ImportApiKeys) else 1
        if parts[-1] and weight + size > most:
            parts.append([])
            weight = 0
        parts[-1].append(entry)
        weight += size
    return parts
