"""From a raw stream entry to a command, or to the reason it is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts import commands as c
from contracts.common import Permission, RoleLocation
from services.keys.streams.intake import Refused, read_entry

STREAM = "apikeys.commands"
ENTRY = "1700000000000-0"
SHA = "f" * 64


def fields(body: Any) -> dict[bytes, bytes]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {b"__data__": raw}


def refused(raw: dict[bytes, bytes]) -> Refused:
    outcome = read_entry(ENTRY, raw, STREAM)
    assert isinstance(outcome, Refused), outcome
    assert outcome.dead_letter.entry_id == ENTRY
    assert outcome.dead_letter.stream == STREAM
    return outcome


class TestNotACommand:
    @pytest.mark.parametrize("raw", [b"not json", b"{", b"\xff\xfe", b""])
    def test_not_json_is_dead_lettered_with_its_payload(self, raw: bytes) -> None:
        outcome = refused({b"__data__": raw})
        assert outcome.result is None
        assert "JSON" in outcome.dead_letter.reason
        assert outcome.dead_letter.payload == raw.decode("utf-8", errors="replace")

    @pytest.mark.parametrize("body", [[{"type": "EnableApiModule"}], "text", 42, None])
    def test_json_that_is_not_an_object_is_dead_lettered(self, body: Any) -> None:
        outcome = refused(fields(body))
        assert outcome.result is None
        assert outcome.dead_letter.reason == "not a JSON object"
        assert outcome.dead_letter.payload == json.dumps(body)

    @pytest.mark.parametrize(
        "body",
        [
            {"type": "LaunchRockets", "command_id": "c1", "organization_id": "o1"},
            {"command_id": "c1", "organization_id": "o1"},
            {"type": 7, "command_id": "c1"},
            {"type": "command", "command_id": "c1"},
        ],
    )
    def test_unknown_type_is_dead_lettered_without_a_result(self, body: dict[str, Any]) -> None:
        outcome = refused(fields(body))
        assert outcome.result is None
        assert "unknown command type" in outcome.dead_letter.reason
        assert json.loads(outcome.dead_letter.payload) == body

    @pytest.mark.parametrize("command_type", [["CreateApiKey"], {"x": 1}])
    def test_an_unhashable_type_is_dead_lettered(self, command_type: Any) -> None:
        outcome = refused(fields({"type": command_type, "command_id": "c1"}))
        assert outcome.result is None
        assert "unknown command type" in outcome.dead_letter.reason

    def test_missing_data_field_is_dead_lettered(self) -> None:
        outcome = refused({b"payload": b'{"type": "EnableApiModule"}'})
        assert outcome.result is None
        assert "__data__" in outcome.dead_letter.reason
        assert "EnableApiModule" in outcome.dead_letter.payload


class TestSchemaFailure:
    @pytest.mark.parametrize(
        "body",
        [
            {"type": "GrantApiAdministrator", "command_id": "c1", "organization_id": "o1"},
            {
                "type": "EnableApiModule",
                "command_id": "c1",
                "organization_id": "o1",
                "unexpected": True,
            },
            {
                "type": "DefineRole",
                "command_id": "c1",
                "organization_id": "o1",
                "role_id": "r",
                "name": "R",
                "permissions": [{"permission": "view", "scope": "galaxy"}],
            },
            {
                "type": "RotateKeySecret",
                "command_id": "c1",
                "organization_id": "o1",
                "actor_id": "a",
                "key_id": "k1",
                "secret_sha256": SHA,
                "grace_seconds": -1,
            },
            {"type": "EnableApiModule", "command_id": "c1", "organization_id": ""},
        ],
    )
    def test_schema_failure_is_rejected_as_invalid_command(self, body: dict[str, Any]) -> None:
        outcome = refused(fields(body))
        assert outcome.result is not None
        assert outcome.result.status == "rejected"
        assert outcome.result.command_id == "c1"
        assert outcome.result.type == body["type"]
        assert outcome.result.error is not None
        assert outcome.result.error.code == "invalid_command"
        assert outcome.dead_letter.reason.startswith("invalid_command")
        assert json.loads(outcome.dead_letter.payload) == body

    def test_the_result_carries_organization_and_key_when_present(self) -> None:
        body = {
            "type": "RenameApiKey",
            "command_id": "c9",
            "organization_id": "o1",
            "actor_id": "alice",
            "key_id": "k1",
        }
        outcome = refused(fields(body))
        assert outcome.result is not None
        assert (outcome.result.organization_id, outcome.result.key_id) == ("o1", "k1")

    def test_without_a_string_command_id_the_result_has_none(self) -> None:
        outcome = refused(fields({"type": "EnableApiModule", "command_id": 5}))
        assert outcome.result is not None
        assert outcome.result.command_id is None
        assert outcome.result.error is not None
        assert outcome.result.error.code == "invalid_command"


class TestValidCommands:
    def test_create_api_key_decodes_to_its_struct(self) -> None:
        body = {
            "type": "CreateApiKey",
            "command_id": "c1",
            "organization_id": "o1",
            "actor_id": "alice",
            "key_id": "k1",
            "name": "Sync",
            "location_ids": ["hq", "plant"],
            "role_ids": ["viewer"],
            "role_locations": [{"role_id": "viewer", "location_id": "plant"}],
            "secret_sha256": SHA,
            "secret_hint": "ak_12",
            "expires_at": "2030-01-01T00:00:00Z",
        }
        command = read_entry(ENTRY, fields(body), STREAM)
        assert isinstance(command, c.CreateApiKey)
        assert command.key_id == "k1"
        assert command.actor_id == "alice"
        assert command.location_ids == ["hq", "plant"]
        assert command.role_locations == [RoleLocation("viewer", "plant")]
        assert command.expires_at is not None
        assert command.expires_at.year == 2030

    def test_define_role_decodes_its_permissions(self) -> None:
        body = {
            "type": "DefineRole",
            "command_id": "c1",
            "organization_id": "o1",
            "role_id": "r1",
            "name": "Viewer",
            "permissions": [{"permission": "view", "scope": "location_and_below"}],
        }
        command = read_entry(ENTRY, fields(body), STREAM)
        assert command == c.DefineRole(
            command_id="c1",
            organization_id="o1",
            role_id="r1",
            name="Viewer",
            permissions=[Permission("view", "location_and_below")],
        )

    def test_toggle_without_applies_decodes_to_none(self) -> None:
        body = {
            "type": "ToggleRoleLocation",
            "command_id": "c1",
            "organization_id": "o1",
            "actor_id": "a",
            "key_id": "k1",
            "role_id": "r1",
            "location_id": "hq",
        }
        command = read_entry(ENTRY, fields(body), STREAM)
        assert isinstance(command, c.ToggleRoleLocation)
        assert command.applies is None

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (
                {"type": "EnableApiModule", "command_id": "c1", "organization_id": "o1"},
                c.EnableApiModule(command_id="c1", organization_id="o1"),
            ),
            (
                {
                    "type": "MoveLocation",
                    "command_id": "c1",
                    "organization_id": "o1",
                    "location_id": "l1",
                    "new_parent_id": None,
                },
                c.MoveLocation(
                    command_id="c1", organization_id="o1", location_id="l1", new_parent_id=None
                ),
            ),
            (
                {
                    "type": "DeleteApiKey",
                    "command_id": "c1",
                    "organization_id": "o1",
                    "actor_id": "a",
                    "key_id": "k1",
                },
                c.DeleteApiKey(command_id="c1", organization_id="o1", actor_id="a", key_id="k1"),
            ),
        ],
    )
    def test_valid_commands_decode_to_the_right_struct(
        self, body: dict[str, Any], expected: c.Command
    ) -> None:
        assert read_entry(ENTRY, fields(body), STREAM) == expected
