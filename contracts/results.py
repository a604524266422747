"""One result per command, published on the results stream in command order."""

from typing import Literal

import msgspec

Status = Literal["accepted", "rejected", "duplicate"]


class Error(msgspec.Struct, frozen=True):
    code: str
    message: str


KeyStatus = Literal["accepted", "rejected", "already_present"]


class KeyOutcome(msgspec.Struct, omit_defaults=True, kw_only=True):
    """What an import did with one of its keys (``error`` when rejected)."""

    key_id: str
    status: KeyStatus
    error: Error | None = None


class CommandResult(msgspec.Struct, omit_defaults=True, kw_only=True):
    command_id: str | None
    type: str | None
    status: Status
    organization_id: str | None = None
    key_id: str | None = None
    position: int | None = None
    error: Error | None = None
    outcomes: list[KeyOutcome] | None = None  # ImportApiKeys: one per key, in command order


class DeadLetter(msgspec.Struct, kw_only=True):
    entry_id: str
    stream: str
    reason: str
    payload: str
    deliveries: int = 1
    truncated: bool = False  # the payload is cut to DEAD_LETTER_PAYLOAD_MAX_BYTES


result_decoder = msgspec.json.Decoder(CommandResult)
