"""From a raw stream entry to a command, or to the reason it cannot be one. An entry over
``ENTRY_MAX_BYTES`` is not even decoded; every dead letter's payload is cut to
``DEAD_LETTER_PAYLOAD_MAX_BYTES``."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from contracts.commands import COMMAND_TYPES, AnyCommand, command_decoder
from contracts.results import CommandResult, DeadLetter, Error
from contracts.streams import DATA_FIELD, DEAD_LETTER_PAYLOAD_MAX_BYTES, ENTRY_MAX_BYTES

_DATA_KEY = DATA_FIELD.encode()


@dataclass(frozen=True)
class Refused:
    """An entry that is not a valid command: dead-lettered, and answered when it names one."""

    dead_letter: DeadLetter
    result: CommandResult | None = None


def entry_size(fields: dict[bytes, bytes]) -> int:
    """The bytes of an entry's field names and values."""
    return sum(len(name) + len(value) for name, value in fields.items())


def read_entry(entry_id: str, fields: dict[bytes, bytes], stream: str) -> AnyCommand | Refused:
    if entry_size(fields) > ENTRY_MAX_BYTES:
        return _refuse(entry_id, stream, "entry_too_large", fields.get(_DATA_KEY, b""))
    raw = fields.get(_DATA_KEY)
    if raw is None:
        return _refuse(entry_id, stream, f"no {DATA_FIELD} field", repr(fields).encode())
    try:
        return command_decoder.decode(raw)  # the common case: one typed decode
    except msgspec.DecodeError:
        pass  # ValidationError is a DecodeError too: work out below what is wrong
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return _refuse(entry_id, stream, "not a JSON object", raw)
    if not isinstance(body, dict):
        return _refuse(entry_id, stream, "not a JSON object", raw)
    command_type = body.get("type")
    if not isinstance(command_type, str) or command_type not in COMMAND_TYPES:
        return _refuse(entry_id, stream, f"unknown command type {command_type!r}", raw)
    try:
        return command_decoder.decode(raw)
    except msgspec.ValidationError as error:
        refused = _refuse(entry_id, stream, f"invalid_command: {error}", raw)
        command_id = body.get("command_id")
        key_id = body.get("key_id")
        organization_id = body.get("organization_id")
        result = CommandResult(
            command_id=command_id if isinstance(command_id, str) else None,
            type=command_type,
            status="rejected",
            organization_id=organization_id if isinstance(organization_id, str) else None,
            key_id=key_id if isinstance(key_id, str) else None,
            error=Error("invalid_command", str(error)),
        )
        return Refused(refused.dead_letter, result)


def _refuse(entry_id: str, stream: str, reason: str, raw: bytes) -> Refused:
    text, truncated = payload_text(raw)
    letter = DeadLetter(
        entry_id=entry_id, stream=stream, reason=reason, payload=text, truncated=truncated
    )
    return Refused(letter)


def payload_text(raw: bytes) -> tuple[str, bool]:
    """A dead letter's payload: the entry's text, cut to the bound (whether it was cut)."""
    if len(raw) <= DEAD_LETTER_PAYLOAD_MAX_BYTES:
        return raw.decode("utf-8", errors="replace"), False
    cut = raw[:DEAD_LETTER_PAYLOAD_MAX_BYTES]
    return cut.decode("utf-8", errors="ignore"), True  # a character cut in two is left out
