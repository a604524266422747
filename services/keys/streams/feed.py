"""Stored events -> contract events: the event store's notification log read in position
order, each key and organization event folded onto its aggregate and mapped to the contract
event it is published as (see ``mapping``). The relay publishes this feed; export writes it.

Each published event carries ``previous_position``, the position of the published event just
before it, read off the store (never off what a process happened to publish), so a relay
after a restart and an export from any position give the same value as an uninterrupted run.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic

from contracts.codec import json_encoder
from services.keys.domain import ApiKey, Organization
from services.keys.settings import DEFAULT_CACHE_SIZE
from services.keys.store import ApiKeysApplication
from services.keys.streams.mapping import PUBLISHED_TOPICS, is_published, to_contract


def _event_topics(*aggregate_classes: type) -> tuple[str, ...]:
    """The topics of every event class the aggregates define (receipts are left out)."""
    return tuple(
        get_topic(member)
        for cls in aggregate_classes
        for member in vars(cls).values()
        if isinstance(member, type) and issubclass(member, DomainEvent)
    )


# The feed reads only what it folds: key and organization events, not command receipts.
FOLDED_TOPICS = _event_topics(ApiKey, Organization)


class EventFeed:
    """Reads on from ``read_up_to``; keeps the aggregates it folded (a bounded LRU), so the
    next event of one of them needs no store read."""

    def __init__(
        self,
        app: ApiKeysApplication,
        *,
        read_up_to: int = 0,
        batch_size: int = 1000,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ):
        self.app = app
        self.read_up_to = read_up_to
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.aggregates: OrderedDict[UUID, Any] = OrderedDict()
        # the last published position at or before ``read_up_to``; None: look it up
        self.last_published: int | None = None

    def restart_at(self, position: int) -> None:
        """Read on from ``position``, folding again from the store."""
        self.read_up_to = position
        self.last_published = None
        self.aggregates.clear()

    def read_batch(self) -> list[tuple[int, bytes]]:
        """The next stored events, mapped to contract events, as (position, JSON)."""
        notifications = self.app.recorder.select_notifications(
            start=self.read_up_to + 1, limit=self.batch_size, topics=FOLDED_TOPICS
        )
        if self.last_published is None:
            self.last_published = self.app.last_position(PUBLISHED_TOPICS, self.read_up_to)
        out: list[tuple[int, bytes]] = []
        for notification in notifications:
            self.read_up_to = notification.id
            event = self.app.mapper.to_domain_event(notification)
            aggregate = self._fold(event)
            if not is_published(event):
                continue
            contract = to_contract(event, aggregate, notification.id, self.last_published)
            if contract is not None:
                out.append((notification.id, json_encoder.encode(contract)))
                self.last_published = notification.id
        return out

    def _fold(self, event: Any) -> Any:
        aggregate = self.aggregates.get(event.originator_id)
        if aggregate is not None and aggregate.version == event.originator_version - 1:
            aggregate = event.mutate(aggregate)
        elif event.originator_version == 1:
            aggregate = event.mutate(None)  # a creation needs no earlier state
        else:
            aggregate = self.app.repository.get(
                event.originator_id, version=event.originator_version
            )
        self.aggregates[event.originator_id] = aggregate
        self.aggregates.move_to_end(event.originator_id)
        if len(self.aggregates) > self.cache_size:
            self.aggregates.popitem(last=False)
        return aggregate
