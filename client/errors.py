"""Every error the client raises, each a ``ClientError``."""

from __future__ import annotations

from contracts.results import CommandResult


class ClientError(Exception):
    pass


class InvalidCommand(ClientError):
    """The command fails the contract's schema; it was not sent."""


class PartitionMismatch(ClientError):
    def __init__(self, configured: int, published: int) -> None:
        super().__init__(
            f"this client is set for {configured} partitions but the keys service published "
            f"{published} (Redis key apikeys.partitions): commands would go to streams nobody "
            "reads; set APIKEYS_PARTITIONS to the service's number (or leave it unset)"
        )
        self.configured = configured
        self.published = published


class CommandTimeout(ClientError):
    """No result came for the command, though it was sent ``attempts`` times."""

    def __init__(self, command_id: str, attempts: int, waited: float) -> None:
        super().__init__(
            f"no result for command {command_id!r} after {attempts} sends over {waited:.1f} s "
            "(is the keys service running?); sending it again with the same command_id is safe"
        )
        self.command_id = command_id
        self.attempts = attempts


class CommandRejected(ClientError):
    """Raised only with ``raise_on_reject=True``: the result is in ``result``."""

    def __init__(self, result: CommandResult) -> None:
        error = result.error
        text = f"{error.code}: {error.message}" if error else result.status
        super().__init__(f"command {result.command_id!r} ({result.type}) rejected: {text}")
        self.result = result
        self.code = error.code if error else None


class EventsMissing(ClientError):
    """Events after ``after_position`` up to ``up_to_position`` are no longer on the events
    stream (it keeps a window): catch up from the event store before reading on."""

    def __init__(self, after_position: int, up_to_position: int, group: str | None = None) -> None:
        read_on = (
            f"then call resume_group({group!r}) and read on"
            if group is not None
            else f"then read on after position {up_to_position}"
        )
        super().__init__(
            f"events after position {after_position} up to {up_to_position} are no longer on "
            "the events stream; catch up first: run `apikeys export --since "
            f"{after_position}` where the event store is (or ask for a replay on "
            f"apikeys.replay-requests), apply those events, {read_on}"
        )
        self.group = group
        self.after_position = after_position
        self.up_to_position = up_to_position


class QueryRejected(ClientError):
    """The projection service answered 4xx with ``{"error", "detail"}``."""

    def __init__(self, status: int, error: str, detail: str | None) -> None:
        super().__init__(f"{status} {error}" + (f": {detail}" if detail else ""))
        self.status = status
        self.error = error
        self.detail = detail


class Unauthorized(QueryRejected):
    """401: no caller token, or one the projection service does not know."""


class Forbidden(QueryRejected):
    """403: the caller lacks the scope, or the organization is not the caller's."""


class ProjectionUnavailable(ClientError):
    """The projection service cannot be reached, or answered 503 (starting, stale, or a
    ``min_position`` not applied in time): try again later; never a verdict on a key."""

    def __init__(self, reason: str, position: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.position = position
