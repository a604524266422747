"""The outcome of a command, stored in the same transaction as the events it caused, so a
redelivered entry gets its original outcome and a resent command is recognised."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from services.keys.domain.ids import receipt_uuid


class CommandReceipt(Aggregate):
    class Recorded(Aggregate.Created):
        command_id: str
        entry_id: str
        command_type: str
        organization_id: str
        key_id: str | None
        status: str
        error_code: str | None
        error_message: str | None
        last_event_id: str | None
        last_event_version: int | None

    def __init__(
        self,
        command_id: str,
        entry_id: str,
        command_type: str,
        organization_id: str,
        key_id: str | None,
        status: str,
        error_code: str | None,
        error_message: str | None,
        last_event_id: str | None,
        last_event_version: int | None,
    ):
        self.command_id = command_id
        self.entry_id = entry_id
        self.command_type = command_type
        self.organization_id = organization_id
        self.key_id = key_id
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.last_event_id = last_event_id
        self.last_event_version = last_event_version

    @staticmethod
    def create_id(command_id: str) -> UUID:
        return receipt_uuid(command_id)

    @classmethod
    def recorded(
        cls,
        *,
        command_id: str,
        entry_id: str,
        command_type: str,
        organization_id: str,
        key_id: str | None,
        status: str,
        error_code: str | None = None,
        error_message: str | None = None,
        last_event_id: str | None = None,
        last_event_version: int | None = None,
    ) -> CommandReceipt.Recorded:
        """The receipt's only event, built without constructing the aggregate: the command
        path writes one receipt per command and never reads it back in the same process."""
        state = {  # the event's own fields (eventsourcing makes the class a dataclass)
            "command_id": command_id,
            "entry_id": entry_id,
            "command_type": command_type,
            "organization_id": organization_id,
            "key_id": key_id,
            "status": status,
            "error_code": error_code,
            "error_message": error_message,
            "last_event_id": last_event_id,
            "last_event_version": last_event_version,
        }
        return cls.Recorded(
            originator_id=cls.create_id(command_id),
            originator_version=cls.INITIAL_VERSION,
            timestamp=cls.Recorded.create_timestamp(),
            originator_topic=_TOPIC,
            **state,
        )


_TOPIC = get_topic(CommandReceipt)
