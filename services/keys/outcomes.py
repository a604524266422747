"""A command's result on the wire and the receipt stored for it, made from each other here
only: the receipt's fields are listed once, in ``domain.receipt.Outcome``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from contracts.commands import AnyCommand, KeyCommand
from contracts.results import CommandResult, Error, KeyOutcome
from services.keys.domain import CommandReceipt, Outcome


def base_result(command: AnyCommand, status: Any) -> CommandResult:
    return CommandResult(
        command_id=command.command_id,
        type=type(command).__name__,
        status=status,
        organization_id=command.organization_id,
        key_id=command.key_id if isinstance(command, KeyCommand) else None,
    )


def replayed(original: CommandResult, same_entry: bool) -> CommandResult:
    """A redelivered entry gets its original outcome; another entry is a duplicate."""
    if same_entry:
        return original
    return CommandResult(
        command_id=original.command_id,
        type=original.type,
        status="duplicate",
        organization_id=original.organization_id,
        key_id=original.key_id,
        position=original.position,
        error=original.error,
        outcomes=original.outcomes,
    )


def receipt_for(
    entry_id: str, command: AnyCommand, result: CommandResult, last_event: Any
) -> CommandReceipt.Recorded:
    """The receipt event for a command just applied (``last_event``: its last event)."""
    error = result.error
    return CommandReceipt.recorded(
        Outcome(
            command_id=command.command_id,
            entry_id=entry_id,
            command_type=type(command).__name__,
            organization_id=command.organization_id,
            key_id=result.key_id,
            status=result.status,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            last_event_id=last_event.originator_id.hex if last_event else None,
            last_event_version=last_event.originator_version if last_event else None,
            key_outcomes=_stored_key_outcomes(result.outcomes),
        )
    )


def result_from(outcome: Outcome) -> CommandResult:
    """The original result recorded by a receipt (its position: see ``last_event_of``)."""
    error = Error(outcome.error_code, outcome.error_message or "") if outcome.error_code else None
    return CommandResult(
        command_id=outcome.command_id,
        type=outcome.command_type,
        status="accepted" if outcome.status == "accepted" else "rejected",
        organization_id=outcome.organization_id,
        key_id=outcome.key_id,
        error=error,
        outcomes=_key_outcomes(getattr(outcome, "key_outcomes", None)),
    )


def last_event_of(outcome: Outcome) -> tuple[UUID, int] | None:
    """The aggregate and version of the command's last event, if it stored any."""
    if outcome.last_event_id and outcome.last_event_version is not None:
        return UUID(outcome.last_event_id), outcome.last_event_version
    return None


def _stored_key_outcomes(outcomes: list[KeyOutcome] | None) -> list[list[str]] | None:
    if outcomes is None:
        return None
    return [
        [o.key_id, o.status, o.error.code, o.error.message] if o.error else [o.key_id, o.status]
        for o in outcomes
    ]


def _key_outcomes(stored: list[list[str]] | None) -> list[KeyOutcome] | None:
    if stored is None:
        return None
    return [
        KeyOutcome(key_id=row[0], status=row[1], error=Error(row[2], row[3]))  # type: ignore[arg-type]
        if len(row) == 4
        else KeyOutcome(key_id=row[0], status=row[1])  # type: ignore[arg-type]
        for row in stored
    ]
