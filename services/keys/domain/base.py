"""What the keys' aggregates share: every event records who caused it (``Cause``), and a
typed creation that fills that in."""

from __future__ import annotations

from typing import Any, Self, cast
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.keys.domain.errors import Cause


class CausedAggregate(Aggregate):
    """An aggregate whose events carry the command and the actor that caused them."""

    class Event(Aggregate.Event):
        command_id: str | None
        actor_id: str | None

    @classmethod
    def _create_caused(
        cls, event_class: type[Aggregate.Created], aggregate_id: UUID, cause: Cause, **fields: Any
    ) -> Self:
        created = cls._create(
            event_class,
            id=aggregate_id,
            command_id=cause.command_id,
            actor_id=cause.actor_id,
            **fields,
        )
        return cast(Self, created)

    def _emit(self, event_class: type[Event], cause: Cause, **fields: Any) -> None:
        self.trigger_event(
            event_class, command_id=cause.command_id, actor_id=cause.actor_id, **fields
        )
