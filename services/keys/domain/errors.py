"""The domain's refusal, with a stable code for the wire, and who caused a change."""

from dataclasses import dataclass


class DomainError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Cause:
    """Who asked for a change and with which command; stored with every event."""

    command_id: str | None
    actor_id: str | None = None
