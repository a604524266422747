"""The message-shape limits, at intake and in the contracts: the size of one commands-stream
entry (dead-lettered unread, its payload cut) and the length of every id."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from contracts import commands as c
from contracts.common import ID_MAX
from contracts.streams import DEAD_LETTER_PAYLOAD_MAX_BYTES, ENTRY_MAX_BYTES
from services.keys.settings import KeysSettings
from services.keys.streams.intake import Refused, read_entry
from services.keys.streams.replies import dead_letter

STREAM = "apikeys.commands"
ENTRY = "1700000000000-0"


def rename(**fields: Any) -> dict[str, Any]:
    body = {
        "type": "RenameApiKey",
        "command_id": "c1",
        "organization_id": "o1",
        "actor_id": "alice",
        "key_id": "k1",
        "name": "n",
    }
    return {**body, **fields}


def entry_of(body: dict[str, Any]) -> dict[bytes, bytes]:
    return {b"__data__": json.dumps(body).encode()}


def padded_to(size: int) -> dict[bytes, bytes]:
    """A valid command whose entry (field name and value) is exactly ``size`` bytes."""
    base = len(b"__data__") + len(json.dumps(rename(name="")).encode())
    return entry_of(rename(name="n" * (size - base)))


class TestEntrySize:
    def test_an_entry_at_the_limit_is_read(self) -> None:
        command = read_entry(ENTRY, padded_to(ENTRY_MAX_BYTES), STREAM)
        assert isinstance(command, c.RenameApiKey)  # the name's own rule refuses it later

    def test_a_larger_entry_is_dead_lettered_as_entry_too_large_without_a_result(self) -> None:
        outcome = read_entry(ENTRY, padded_to(ENTRY_MAX_BYTES + 1), STREAM)
        assert isinstance(outcome, Refused)
        assert outcome.result is None
        assert outcome.dead_letter.reason == "entry_too_large"
        assert outcome.dead_letter.truncated is True
        payload = outcome.dead_letter.payload.encode()
        assert len(payload) == DEAD_LETTER_PAYLOAD_MAX_BYTES
        assert payload.startswith(b'{"type": "RenameApiKey"')

    def test_every_field_counts_toward_the_size(self) -> None:
        fields = {**padded_to(ENTRY_MAX_BYTES - 10), b"extra": b"x" * 20}
        outcome = read_entry(ENTRY, fields, STREAM)
        assert isinstance(outcome, Refused)
        assert outcome.dead_letter.reason == "entry_too_large"

    def test_a_cut_payload_leaves_out_a_character_cut_in_two(self) -> None:
        raw = b"x" * (DEAD_LETTER_PAYLOAD_MAX_BYTES - 1) + "é".encode() * 10
        outcome = read_entry(ENTRY, {b"__data__": raw}, STREAM)
        assert isinstance(outcome, Refused)
        assert outcome.dead_letter.payload == "x" * (DEAD_LETTER_PAYLOAD_MAX_BYTES - 1)
        assert outcome.dead_letter.truncated is True

    def test_a_small_refused_entry_keeps_its_whole_payload(self) -> None:
        outcome = read_entry(ENTRY, {b"__data__": b"not json"}, STREAM)
        assert isinstance(outcome, Refused)
        assert outcome.dead_letter.payload == "not json"
        assert outcome.dead_letter.truncated is False

    def test_a_dead_letter_after_failed_handling_cuts_its_payload_too(self) -> None:
        settings = KeysSettings(redis_url="redis://unused")
        data = padded_to(DEAD_LETTER_PAYLOAD_MAX_BYTES * 2)
        letter = dead_letter(settings, ENTRY, data, 5)
        assert letter.truncated is True
        assert len(letter.payload.encode()) == DEAD_LETTER_PAYLOAD_MAX_BYTES


class TestIdLength:
    @pytest.mark.parametrize("field", ["command_id", "organization_id", "actor_id", "key_id"])
    def test_an_id_at_the_limit_is_read(self, field: str) -> None:
        command = read_entry(ENTRY, entry_of(rename(**{field: "i" * ID_MAX})), STREAM)
        assert isinstance(command, c.RenameApiKey)

    @pytest.mark.parametrize("field", ["command_id", "organization_id", "actor_id", "key_id"])
    def test_a_longer_id_is_invalid_command(self, field: str) -> None:
        outcome = read_entry(ENTRY, entry_of(rename(**{field: "i" * (ID_MAX + 1)})), STREAM)
        assert isinstance(outcome, Refused)
        assert outcome.result is not None
        assert outcome.result.error is not None
        assert outcome.result.error.code == "invalid_command"
        assert f"$.{field}" in outcome.result.error.message

    @pytest.mark.parametrize(
        ("command", "fields"),
        [
            (c.DefineLocation, {"location_id": "l", "name": "n", "parent_id": None}),
            (c.DefineRole, {"role_id": "r", "name": "n"}),
            (c.GrantApiAdministrator, {"user_id": "u"}),
            (c.MoveLocation, {"location_id": "l", "new_parent_id": "p"}),
        ],
    )
    def test_every_id_of_a_directory_command_is_bounded(
        self, command: type[Any], fields: dict[str, Any]
    ) -> None:
        decoder = msgspec.json.Decoder(command)
        body = {"command_id": "c", "organization_id": "o", **fields}
        decoder.decode(msgspec.json.encode(body))
        for name, value in fields.items():
            if name.endswith("_id") and value is not None:
                long = {**body, name: "i" * (ID_MAX + 1)}
                with pytest.raises(msgspec.ValidationError, match=name):
                    decoder.decode(msgspec.json.encode(long))

    def test_the_ids_of_a_cell_switched_off_at_creation_are_bounded(self) -> None:
        body = {
            "type": "CreateApiKey",
            "command_id": "c1",
            "organization_id": "o1",
            "actor_id": "alice",
            "key_id": "k1",
            "name": "n",
            "location_ids": ["l"],
            "secret_sha256": "a" * 64,
            "role_locations": [{"role_id": "r" * (ID_MAX + 1), "location_id": "l"}],
        }
        outcome = read_entry(ENTRY, entry_of(body), STREAM)
        assert isinstance(outcome, Refused)
        assert outcome.result is not None and outcome.result.error is not None
        assert outcome.result.error.code == "invalid_command"
        assert "role_id" in outcome.result.error.message
