"""JSON lines in, ImportApiKeys commands out: each line is one key (the fields of
``CreateApiKey`` without ``type`` and ``command_id``); keys of one organization and actor are
grouped into commands of at most ``IMPORT_MAX_KEYS`` keys that stay within the entry-size
limit. A line that is not such an object is reported with its number and a code."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

import msgspec

from contracts.commands import IMPORT_MAX_KEYS, ImportedKey
from contracts.common import Id, RoleLocation
from contracts.streams import DATA_FIELD, ENTRY_MAX_BYTES


class ImportLine(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    organization_id: Id
    actor_id: Id
    key_id: Id
    name: str
    location_ids: list[Id]
    secret_sha256: str
    role_ids: list[Id] = []
    role_locations: list[RoleLocation] = []
    secret_hint: str = ""
    expires_at: datetime | None = None


_line_decoder = msgspec.json.Decoder(ImportLine)
_encoder = msgspec.json.Encoder()
# room for the command's own fields around its keys (ids of at most 200 characters each)
_HEADER_ROOM = 1024
KEYS_MAX_BYTES = ENTRY_MAX_BYTES - len(DATA_FIELD) - _HEADER_ROOM


@dataclass(frozen=True)
class BadLine:
    line: int
    code: str  # invalid_json, invalid_command, entry_too_large
    message: str


@dataclass
class Batch:
    """One ImportApiKeys command to be: its organization, actor, keys (JSON) and lines."""

    organization_id: str
    actor_id: str
    keys: list[bytes] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    size: int = 0

    def fits(self, encoded: bytes) -> bool:
        return len(self.keys) < IMPORT_MAX_KEYS and self.size + len(encoded) + 1 <= KEYS_MAX_BYTES

    def add(self, encoded: bytes, line: int) -> None:
        self.keys.append(encoded)
        self.lines.append(line)
        self.size += len(encoded) + 1

    def command(self, command_id: str) -> bytes:
        """The command's JSON, its keys written as they were encoded."""
        head = _encoder.encode(
            {
                "type": "ImportApiKeys",
                "command_id": command_id,
                "organization_id": self.organization_id,
                "actor_id": self.actor_id,
            }
        )
        return b"".join((head[:-1], b',"keys":[', b",".join(self.keys), b"]}"))


def parse_line(raw: bytes, number: int) -> tuple[ImportLine, bytes] | BadLine:
    """The line's key and its JSON as a command carries it, or why the line is refused."""
    try:
        line = _line_decoder.decode(raw)
    except msgspec.ValidationError as error:
        return BadLine(number, "invalid_command", str(error))
    except msgspec.DecodeError as error:
        return BadLine(number, "invalid_json", str(error))
    key = ImportedKey(
        key_id=line.key_id,
        name=line.name,
        location_ids=line.location_ids,
        secret_sha256=line.secret_sha256,
        role_ids=line.role_ids,
        role_locations=line.role_locations,
        secret_hint=line.secret_hint,
        expires_at=line.expires_at,
    )
    encoded = _encoder.encode(key)
    if len(encoded) + 1 > KEYS_MAX_BYTES:
        return BadLine(number, "entry_too_large", "the key alone exceeds the entry-size limit")
    return line, encoded


def read_lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each non-blank line; ``None`` for a line longer than the
    entry-size limit, which is skipped unread (memory stays bounded by the limit)."""
    number = 0
    while True:
        raw = stream.readline(ENTRY_MAX_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > ENTRY_MAX_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # the rest of the long line
                raw = stream.readline(ENTRY_MAX_BYTES)
            yield number, None
            continue
        if raw.strip():
            yield number, raw


class Grouper:
    """Groups keys into batches per organization and actor. At most ``held_keys`` keys wait
    in unfinished batches; past that the fullest is let go, so memory stays bounded however
    the lines are ordered."""

    def __init__(self, held_keys: int = 20_000) -> None:
        self.open: dict[tuple[str, str], Batch] = {}
        self.held = 0
        self.held_keys = held_keys

    def add(self, line: ImportLine, encoded: bytes, number: int) -> Iterator[Batch]:
        group = (line.organization_id, line.actor_id)
        batch = self.open.get(group)
        if batch is not None and not batch.fits(encoded):
            yield self._close(group)
            batch = None
        if batch is None:
            batch = self.open[group] = Batch(line.organization_id, line.actor_id)
        batch.add(encoded, number)
        self.held += 1
        if self.held > self.held_keys:
            fullest = max(self.open, key=lambda g: len(self.open[g].keys))
            yield self._close(fullest)

    def finish(self) -> Iterator[Batch]:
        for group in list(self.open):
            yield self._close(group)

    def _close(self, group: tuple[str, str]) -> Batch:
        batch = self.open.pop(group)
        self.held -= len(batch.keys)
        return batch


def batches(stream: BinaryIO) -> Iterator[Batch | BadLine]:
    """Every batch to send and every bad line, as the lines are read."""
    grouper = Grouper()
    for number, raw in read_lines(stream):
        parsed = (
            parse_line(raw, number)
            if raw is not None
            else BadLine(number, "entry_too_large", "the line exceeds the entry-size limit")
        )
        if isinstance(parsed, BadLine):
            yield parsed
            continue
        yield from grouper.add(*parsed, number)
    yield from grouper.finish()
