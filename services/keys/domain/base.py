"""What the keys' aggregates share: every event records who caused it (``Cause``), a typed
creation that fills that in, and snapshots whose state is plain JSON values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Self, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, Snapshot, resolve_topic

from services.keys.domain.errors import Cause

# (to plain JSON values, back) for one attribute of an aggregate's state
Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]


def set_codec() -> Codec:
    return sorted, set


def dict_of_sets_codec() -> Codec:
    return (
        lambda groups: {k: sorted(v) for k, v in groups.items()},
        lambda groups: {k: set(v) for k, v in groups.items()},
    )


def pairs_codec() -> Codec:
    """A dict keyed by pairs, as [first, second, value] triples."""
    return (
        lambda cells: [[a, b, value] for (a, b), value in cells.items()],
        lambda cells: {(a, b): value for a, b, value in cells},
    )


class PlainSnapshot(Snapshot):
    """The library's snapshot (every attribute of the aggregate, which the library sets back
    as they were), with the attributes the event store's JSON cannot hold (sets, tuples,
    dataclasses, tuple keys) written through the aggregate's ``snapshot_codecs``."""

    @classmethod
    def take(cls, aggregate: Any) -> Self:
        taken = super().take(aggregate)
        codecs: dict[str, Codec] = type(aggregate).snapshot_codecs
        state = {k: codecs[k][0](v) if k in codecs else v for k, v in taken.state.items()}
        return cls(
            originator_id=taken.originator_id,
            originator_version=taken.originator_version,
            timestamp=taken.timestamp,
            topic=taken.topic,
            state=state,
        )

    def mutate(self, _: None) -> Any:
        codecs: dict[str, Codec] = resolve_topic(self.topic).snapshot_codecs
        state = {k: codecs[k][1](v) if k in codecs else v for k, v in self.state.items()}
        restored = Snapshot(
            originator_id=self.originator_id,
            originator_version=self.originator_version,
            timestamp=self.timestamp,
            topic=self.topic,
            state=state,
        )
        return restored.mutate(None)


class CausedAggregate(Aggregate):
    """An aggregate whose events carry the command and the actor that caused them."""

    Snapshot = PlainSnapshot
    snapshot_codecs: ClassVar[dict[str, Codec]] = {}

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
