"""The admin service's pure rules: who is signed in, its settings, and the commands an edit of
a key becomes."""

from __future__ import annotations

import json

import pytest

from contracts import commands as c
from contracts import directory as d
from contracts.common import MatrixCell
from services.admin.edits import KeyForm, edit_commands
from services.admin.identity import signed_in_user
from services.admin.messages import field_errors
from services.admin.settings import AdminSettings, parse_networks


def settings(**changes: object) -> AdminSettings:
    return AdminSettings(**changes)  # type: ignore[arg-type]


class TestIdentity:
    def test_the_header_is_believed_only_from_a_trusted_proxy(self) -> None:
        trusted = settings(trusted_proxies=parse_networks("10.0.0.0/24, ::1"))
        assert signed_in_user(trusted, "10.0.0.7", "alice") == "alice"
        assert signed_in_user(trusted, "::1", " bob ") == "bob"
        assert signed_in_user(trusted, "10.0.1.7", "alice") is None
        assert signed_in_user(settings(), "127.0.0.1", "alice") is None  # none trusted by default

    @pytest.mark.parametrize("value", [None, "", "   ", "a\\nb".replace("\\n", "\n"), "x" * 201])
    def test_a_missing_or_malformed_header_signs_nobody_in(self, value: str | None) -> None:
        trusted = settings(trusted_proxies=parse_networks("127.0.0.1"))
        assert signed_in_user(trusted, "127.0.0.1", value) is None

    def test_the_development_user_signs_every_request_in(self) -> None:
        assert signed_in_user(settings(dev_user="dev"), None, None) == "dev"
        assert signed_in_user(settings(dev_user="dev"), "127.0.0.1", "alice") == "dev"

    def test_the_development_user_needs_a_loopback_address(self) -> None:
        with pytest.raises(ValueError, match="loopback"):
            AdminSettings.from_env(
                {"APIKEYS_ADMIN_DEV_USER": "dev", "APIKEYS_ADMIN_ADDR": "0.0.0.0:8082"}
            )
        assert AdminSettings.from_env({"APIKEYS_ADMIN_DEV_USER": "dev"}).dev_user == "dev"


class TestSettings:
    def test_defaults(self) -> None:
        read = AdminSettings.from_env({})
        assert (read.addr, read.user_header, read.dev_user, read.caller_token) == (
            "127.0.0.1:8082",
            "X-Forwarded-User",
            None,
            None,
        )
        assert read.projections_url == "http://127.0.0.1:8080"
        assert read.trusted_proxies == ()

    def test_the_projection_address_follows_apikeys_http_addr(self) -> None:
        read = AdminSettings.from_env({"APIKEYS_HTTP_ADDR": "127.0.0.1:9000"})
        assert read.projections_url == "http://127.0.0.1:9000"

    def test_a_bad_proxy_list_is_refused(self) -> None:
        with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
            parse_networks("10.0.0.0/33")


def key(**changes: object) -> d.KeyDetails:
    values: dict[str, object] = {
        "key_id": "k1",
        "organization_id": "o",
        "name": "Export",
        "location_ids": ["a", "b"],
        "role_ids": ["r"],
        "matrix": [MatrixCell("r", "a", True), MatrixCell("r", "b", False)],
        "status": "active",
        "enabled": True,
        "deleted": False,
        "expires_at": None,
        "secret_hint": "apk_...abcd",
        "previous_secret_valid_until": None,
        "created_at": None,
        "created_by": None,
        "changed_at": None,
        "changed_by": None,
    }
    values.update(changes)
    return d.KeyDetails(**values)  # type: ignore[arg-type]


def kinds(commands: list[c.KeyCommand]) -> list[tuple[str, ...]]:
    out = []
    for command in commands:
        fields = [
            str(getattr(command, name))
            for name in ("name", "location_id", "role_id", "applies")
            if hasattr(command, name)
        ]
        out.append((type(command).__name__, *fields))
    return out


class TestEdits:
    def test_an_unchanged_form_sends_nothing(self) -> None:
        current = key()
        assert edit_commands(current, KeyForm.of_key(current), "alice") == []

    def test_adds_come_before_cells_and_removals_after(self) -> None:
        wanted = KeyForm("Renamed", ["b", "c"], ["r", "s"], {("s", "c"), ("r", "b")})
        assert kinds(edit_commands(key(), wanted, "alice")) == [
            ("RenameApiKey", "Renamed"),
            ("AddKeyLocation", "c"),
            ("AddKeyRole", "s"),
            ("ToggleRoleLocation", "c", "s", "False"),
            ("RemoveKeyLocation", "a"),
        ]

    def test_a_cell_checked_again_is_set_on(self) -> None:
        wanted = KeyForm("Export", ["a", "b"], ["r"], set())
        assert kinds(edit_commands(key(), wanted, "alice")) == [
            ("ToggleRoleLocation", "b", "r", "True")
        ]

    def test_every_command_carries_the_actor_and_a_fresh_id(self) -> None:
        wanted = KeyForm("New", ["a"], [], set())
        commands = edit_commands(key(), wanted, "alice")
        assert {x.actor_id for x in commands} == {"alice"}
        assert len({x.command_id for x in commands}) == len(commands)

    def test_the_form_is_parsed_with_its_grid_cells(self) -> None:
        form = KeyForm.parse(
            {
                "name": [" Nightly "],
                "location": ["a", "b", "a", ""],
                "role": ["r"],
                "off": [json.dumps(["r", "b"]), "not json", json.dumps(["x"])],
            }
        )
        assert (form.name, form.location_ids, form.role_ids, form.off) == (
            " Nightly ",
            ["a", "b"],
            ["r"],
            {("r", "b")},
        )

    def test_a_new_key_sends_only_the_cells_of_its_roles_and_locations(self) -> None:
        form = KeyForm("Nightly", ["a", "b"], ["r"], {("r", "b"), ("gone", "a")})
        assert form.cells_off() == [("r", "b")]


def test_errors_land_beside_their_field_in_words() -> None:
    assert field_errors("name_required") == {"name": "Give the key a name."}
    assert "locations" in field_errors("unknown_location")
    assert list(field_errors("something_new")) == ["form"]


def test_a_history_entry_reads_as_words_with_paths_and_role_names() -> None:
    from datetime import UTC, datetime

    from contracts.audit import HistoryEntry
    from services.admin.describe import describe

    def entry(kind: str, changes: dict) -> HistoryEntry:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        return HistoryEntry(
            position=1, type=kind, occurred_at=at, actor_id="a", command_id="c", changes=changes
        )

    paths, roles = {"p7": "HQ / Plant 7"}, {"r": "Viewer"}
    created = entry(
        "ApiKeyCreated",
        {
            "name": "K",
            "location_ids": ["p7"],
            "role_ids": ["r"],
            "matrix": [{"role_id": "r", "location_id": "p7", "applies": False}],
            "secret": "set",
            "secret_hint": "apk_...abcd",
        },
    )
    assert describe(created, paths, roles) == (
        "Created the key; name: K; locations: HQ / Plant 7; roles: Viewer; "
        "1 grid cells unchecked; token apk_...abcd"
    )
    toggled = entry("RoleLocationToggled", {"role_id": "r", "location_id": "p7", "applies": True})
    assert describe(toggled, paths, roles) == (
        "Changed Advanced Role Configuration: Viewer at HQ / Plant 7 checked"
    )
    renamed = entry("ApiKeyRenamed", {"name": {"from": "K", "to": "L"}})
    assert describe(renamed, paths, roles) == "Renamed the key; name: L"
