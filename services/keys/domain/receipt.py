"""The outcome of a command, stored in the same transaction as the events it caused, so a
redelivered entry gets its original outcome and a resent command is recognised."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.keys.domain.ids import receipt_uuid


@dataclass(frozen=True)
class Outcome:
    """What a receipt records: the one list of its fields (the stored event's fields)."""

    command_id: str
    entry_id: str
    command_type: str
    organization_id: str
    key_id: str | None
    status: str
    error_code: str | None = None
    error_message: str | None = None
    last_event_id: str | None = None  # the command's last event: its aggregate and version
    last_event_version: int | None = None
    # an import's outcome per key: [key_id, status] or [key_id, "rejected", code, message]
    key_outcomes: list[list[str]] | None = None


class CommandReceipt(Aggregate):
    def __init__(self) -> None:
        self.outcome: Outcome  # set by the Recorded event

    class Recorded(Outcome, Aggregate.Created):
        """The receipt's only event; it is the outcome it records."""

        def apply(self, receipt: CommandReceipt) -> None:
            receipt.outcome = self

    @staticmethod
    def create_id(command_id: str) -> UUID:
        return receipt_uuid(command_id)

    @classmethod
    def recorded(cls, outcome: Outcome) -> CommandReceipt.Recorded:
        """The receipt's event, built without constructing the aggregate: the command path
        writes one receipt per command and never reads it back in the same process."""
        fields = {
            "originator_id": cls.create_id(outcome.command_id),
            "originator_version": cls.INITIAL_VERSION,
            "timestamp": cls.Recorded.create_timestamp(),
            "originator_topic": _TOPIC,
            **vars(outcome),
        }
        return cls.Recorded(**fields)


# the library's topic for the class (module:qualname), which resolves back to it
_TOPIC = f"{CommandReceipt.__module__}:{CommandReceipt.__qualname__}"
