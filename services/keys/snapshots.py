"""When the command path writes a snapshot of an aggregate, so that loading any aggregate reads
its latest snapshot and fewer than about ``interval`` events after it.

An aggregate gets one after a stored batch when its version passed a multiple of ``interval``,
and when it was just loaded by replaying ``interval`` events or more (a store written before
snapshots existed, or with them off). Snapshots are written after the batch's events are
stored, as the aggregates are then; one that fails to be written only makes later loads
longer, so it is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.keys.domain import ApiKey, Organization
from services.keys.store import ApiKeysApplication

log = logging.getLogger(__name__)
SNAPSHOTTED = (ApiKey, Organization)


class SnapshotPolicy:
    def __init__(self, app: ApiKeysApplication, interval: int):
        self.app = app
        self.interval = interval  # 0: never write one
        self.due: dict[UUID, Aggregate] = {}  # loaded from a long replay, since the last batch

    def load(self, aggregate_id: UUID) -> Aggregate:
        aggregate, replayed = self.app.load(aggregate_id)
        if self.interval and replayed >= self.interval and isinstance(aggregate, SNAPSHOTTED):
            self.due[aggregate_id] = aggregate
        return aggregate

    def stored(self, changed: dict[UUID, Aggregate], events: Iterable[Any]) -> None:
        """The batch's events are stored: snapshot what is due."""
        if not self.interval:
            return
        due = self.due
        self.due = {}
        for event in events:
            if event.originator_version % self.interval == 0:
                aggregate = changed.get(event.originator_id)
                if isinstance(aggregate, SNAPSHOTTED):
                    due[event.originator_id] = aggregate
        if not due:
            return
        try:
            self.app.put_snapshots(due.values())
        except Exception:  # noqa: BLE001 - the events are stored; only later loads are slower
            log.warning("snapshots of %d aggregates not written", len(due), exc_info=True)

    def forget(self) -> None:
        """The batch was not stored: what it loaded may hold changes that never were."""
        self.due.clear()
