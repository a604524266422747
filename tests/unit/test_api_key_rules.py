"""ApiKey rules: creation, the role x location matrix, secrets, status and the tombstone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.keys.domain import ApiKey, Cause, DomainError, Organization

CAUSE = Cause("cmd-1", "alice")
SHA_A = "a" * 64
SHA_B = "0123456789abcdef" * 4
NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def organization() -> Organization:
    org = Organization.register("org-1", Cause("dir-1"))
    org.enable_api_module(CAUSE)
    org.grant_api_administrator("alice", CAUSE)
    for location_id in ("hq", "plant", "office"):
        org.define_location(location_id, location_id.title(), None, CAUSE)
    for role_id in ("viewer", "editor", "auditor"):
        org.define_role(role_id, role_id.title(), [["view", "everywhere"]], CAUSE)
    return org


def create(org: Organization | None = None, **overrides: Any) -> ApiKey:
    fields: dict[str, Any] = {
        "name": "Integration",
        "location_ids": ["hq", "plant"],
        "role_ids": ["viewer"],
        "off_cells": [],
        "secret_sha256": SHA_A,
        "secret_hint": "ak_1234",
        "expires_at": None,
        "cause": CAUSE,
    }
    fields.update(overrides)
    return ApiKey.create(org or organization(), "key-1", **fields)


def refused(code: str, action: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    with pytest.raises(DomainError) as caught:
        action(*args, **kwargs)
    assert caught.value.code == code


def cells(key: ApiKey) -> dict[tuple[str, str], bool]:
    return dict(key.matrix)


class TestCreate:
    def test_create_stores_what_was_asked(self) -> None:
        expires = NOW + timedelta(days=30)
        key = create(expires_at=expires)
        assert key.organization_id == "org-1"
        assert key.key_id == "key-1"
        assert key.name == "Integration"
        assert key.location_ids == ["hq", "plant"]
        assert key.role_ids == ["viewer"]
        assert key.secret_sha256 == SHA_A
        assert key.secret_hint == "ak_1234"
        assert key.expires_at == expires
        assert key.enabled is True
        assert key.deleted is False
        assert key.previous_secret_sha256 is None

    def test_the_key_id_maps_to_a_deterministic_aggregate_id(self) -> None:
        assert create().id == ApiKey.create_id("key-1")
        assert ApiKey.create_id("key-1") != ApiKey.create_id("key-2")

    def test_name_is_trimmed(self) -> None:
        assert create(name="   Payroll sync \t").name == "Payroll sync"

    @pytest.mark.parametrize("name", ["", "    ", "\n"])
    def test_blank_name_is_refused(self, name: str) -> None:
        refused("name_required", create, name=name)

    def test_name_of_100_characters_is_accepted(self) -> None:
        assert create(name=" " + "x" * 100 + " ").name == "x" * 100

    def test_name_of_101_characters_is_refused(self) -> None:
        refused("name_too_long", create, name="x" * 101)

    def test_a_single_character_name_is_accepted(self) -> None:
        assert create(name="x").name == "x"

    def test_no_locations_is_refused(self) -> None:
        refused("locations_required", create, location_ids=[])

    def test_unknown_location_is_refused(self) -> None:
        refused("unknown_location", create, location_ids=["hq", "mars"])

    def test_unknown_role_is_refused(self) -> None:
        refused("unknown_role", create, role_ids=["viewer", "admin"])

    def test_zero_roles_is_allowed(self) -> None:
        key = create(role_ids=[])
        assert key.role_ids == []
        assert key.matrix == {}

    def test_repeated_ids_are_kept_once(self) -> None:
        key = create(location_ids=["hq", "plant", "hq"], role_ids=["viewer", "viewer"])
        assert key.location_ids == ["hq", "plant"]
        assert key.role_ids == ["viewer"]

    def test_an_off_cell_needs_its_role_on_the_key(self) -> None:
        refused("role_not_on_key", create, off_cells=[("editor", "hq")])

    def test_an_off_cell_needs_its_location_on_the_key(self) -> None:
        refused("location_not_on_key", create, off_cells=[("viewer", "office")])

    def test_off_cells_are_switched_off_and_the_rest_on(self) -> None:
        key = create(role_ids=["viewer", "editor"], off_cells=[("editor", "plant")])
        assert cells(key) == {
            ("viewer", "hq"): True,
            ("viewer", "plant"): True,
            ("editor", "hq"): True,
            ("editor", "plant"): False,
        }

    @pytest.mark.parametrize(
        "secret",
        [
            "",
            "a" * 63,
            "a" * 65,
            "A" * 64,
            "g" * 64,
            "a" * 63 + " ",
            "a" * 64 + "\n",
            "0x" + "a" * 62,
        ],
    )
    def test_a_secret_hash_must_be_64_lowercase_hex(self, secret: str) -> None:
        refused("invalid_secret_hash", create, secret_sha256=secret)

    def test_a_lowercase_hex_hash_is_accepted(self) -> None:
        assert create(secret_sha256=SHA_B).secret_sha256 == SHA_B

    def test_creation_emits_one_event_that_rebuilds_the_key(self) -> None:
        key = create(role_ids=["viewer", "editor"], off_cells=[("editor", "hq")])
        events = key.collect_events()
        assert [type(e) for e in events] == [ApiKey.Created]
        rebuilt = events[0].mutate(None)
        assert rebuilt.matrix == key.matrix
        assert (rebuilt.name, rebuilt.location_ids, rebuilt.role_ids) == (
            key.name,
            key.location_ids,
            key.role_ids,
        )
        assert events[0].command_id == "cmd-1"
        assert events[0].actor_id == "alice"


class TestMatrix:
    def test_every_cell_is_on_by_default(self) -> None:
        key = create(location_ids=["hq", "plant", "office"], role_ids=["viewer", "editor"])
        assert len(key.matrix) == 6
        assert all(key.matrix.values())

    def test_a_new_role_is_on_at_every_location(self) -> None:
        org = organization()
        key = create(org, off_cells=[("viewer", "hq")])
        key.add_role(org, "editor", CAUSE)
        assert key.role_ids == ["viewer", "editor"]
        assert cells(key) == {
            ("viewer", "hq"): False,
            ("viewer", "plant"): True,
            ("editor", "hq"): True,
            ("editor", "plant"): True,
        }

    def test_a_new_location_is_on_for_every_role(self) -> None:
        org = organization()
        key = create(org, role_ids=["viewer", "editor"], off_cells=[("editor", "hq")])
        key.add_location(org, "office", CAUSE)
        assert key.location_ids == ["hq", "plant", "office"]
        assert key.matrix[("viewer", "office")] is True
        assert key.matrix[("editor", "office")] is True
        assert key.matrix[("editor", "hq")] is False

    def test_cells_of_a_removed_role_are_pruned(self) -> None:
        key = create(role_ids=["viewer", "editor"], off_cells=[("editor", "hq")])
        key.remove_role("editor", CAUSE)
        assert cells(key) == {("viewer", "hq"): True, ("viewer", "plant"): True}

    def test_cells_of_a_removed_location_are_pruned(self) -> None:
        key = create(role_ids=["viewer", "editor"], off_cells=[("editor", "hq")])
        key.remove_location("hq", CAUSE)
        assert cells(key) == {("viewer", "plant"): True, ("editor", "plant"): True}

    def test_a_role_that_comes_back_starts_all_on(self) -> None:
        org = organization()
        key = create(org, off_cells=[("viewer", "hq")])
        key.remove_role("viewer", CAUSE)
        key.add_role(org, "viewer", CAUSE)
        assert cells(key) == {("viewer", "hq"): True, ("viewer", "plant"): True}

    def test_a_location_that_comes_back_starts_all_on(self) -> None:
        org = organization()
        key = create(org, location_ids=["hq", "plant", "office"], off_cells=[("viewer", "hq")])
        key.remove_location("hq", CAUSE)
        key.add_location(org, "hq", CAUSE)
        assert key.matrix[("viewer", "hq")] is True

    def test_adding_an_unknown_role_is_refused(self) -> None:
        org = organization()
        key = create(org)
        refused("unknown_role", key.add_role, org, "ghost", CAUSE)
        assert key.role_ids == ["viewer"]

    def test_adding_an_unknown_location_is_refused(self) -> None:
        org = organization()
        key = create(org)
        refused("unknown_location", key.add_location, org, "mars", CAUSE)
        assert key.location_ids == ["hq", "plant"]

    def test_adding_a_role_twice_is_refused(self) -> None:
        org = organization()
        key = create(org)
        refused("role_already_on_key", key.add_role, org, "viewer", CAUSE)
        assert key.role_ids == ["viewer"]

    def test_adding_a_location_twice_is_refused(self) -> None:
        org = organization()
        key = create(org)
        refused("location_already_on_key", key.add_location, org, "hq", CAUSE)
        assert key.location_ids == ["hq", "plant"]

    def test_removing_a_role_not_on_the_key_is_refused(self) -> None:
        key = create()
        refused("role_not_on_key", key.remove_role, "editor", CAUSE)

    def test_removing_a_location_not_on_the_key_is_refused(self) -> None:
        key = create()
        refused("location_not_on_key", key.remove_location, "office", CAUSE)

    def test_the_last_location_stays(self) -> None:
        key = create(location_ids=["hq"])
        refused("last_location", key.remove_location, "hq", CAUSE)
        assert key.location_ids == ["hq"]

    def test_removing_down_to_one_location_is_allowed(self) -> None:
        key = create()
        key.remove_location("plant", CAUSE)
        assert key.location_ids == ["hq"]


class TestToggle:
    def test_toggle_needs_two_locations_and_a_role(self) -> None:
        key = create(location_ids=["hq"])
        refused("matrix_unavailable", key.toggle_role_location, "viewer", "hq", None, CAUSE)
        assert key.matrix[("viewer", "hq")] is True

    def test_toggle_without_a_role_is_unavailable(self) -> None:
        key = create(role_ids=[])
        refused("matrix_unavailable", key.toggle_role_location, "viewer", "hq", None, CAUSE)

    def test_toggle_becomes_unavailable_when_the_second_location_leaves(self) -> None:
        key = create()
        key.remove_location("plant", CAUSE)
        refused("matrix_unavailable", key.toggle_role_location, "viewer", "hq", False, CAUSE)

    def test_toggle_needs_the_role_on_the_key(self) -> None:
        key = create()
        refused("role_not_on_key", key.toggle_role_location, "editor", "hq", None, CAUSE)

    def test_toggle_needs_the_location_on_the_key(self) -> None:
        key = create()
        refused("location_not_on_key", key.toggle_role_location, "viewer", "office", None, CAUSE)

    def test_toggle_without_applies_flips_the_cell(self) -> None:
        key = create()
        key.toggle_role_location("viewer", "hq", None, CAUSE)
        assert key.matrix[("viewer", "hq")] is False
        assert key.matrix[("viewer", "plant")] is True
        key.toggle_role_location("viewer", "hq", None, CAUSE)
        assert key.matrix[("viewer", "hq")] is True

    @pytest.mark.parametrize("applies", [True, False])
    def test_toggle_with_applies_sets_the_cell(self, applies: bool) -> None:
        key = create()
        key.toggle_role_location("viewer", "hq", applies, CAUSE)
        assert key.matrix[("viewer", "hq")] is applies
        key.toggle_role_location("viewer", "hq", applies, CAUSE)
        assert key.matrix[("viewer", "hq")] is applies

    def test_toggle_records_the_resulting_value(self) -> None:
        key = create(off_cells=[("viewer", "plant")])
        key.collect_events()
        key.toggle_role_location("viewer", "plant", None, CAUSE)
        (event,) = key.collect_events()
        assert isinstance(event, ApiKey.RoleLocationToggled)
        assert (event.role_id, event.location_id, event.applies) == ("viewer", "plant", True)


class TestSecret:
    def test_rotate_without_grace_forgets_the_old_secret(self) -> None:
        key = create()
        key.rotate_secret(SHA_B, "ak_9999", 0, NOW, CAUSE)
        assert key.secret_sha256 == SHA_B
        assert key.secret_hint == "ak_9999"
        assert key.previous_secret_sha256 is None
        assert key.previous_secret_valid_until is None

    def test_rotate_with_grace_keeps_the_old_secret_until_now_plus_grace(self) -> None:
        key = create()
        key.rotate_secret(SHA_B, "ak_9999", 3600, NOW, CAUSE)
        assert key.secret_sha256 == SHA_B
        assert key.previous_secret_sha256 == SHA_A
        assert key.previous_secret_valid_until == NOW + timedelta(seconds=3600)

    def test_a_later_rotation_without_grace_drops_the_previous_secret(self) -> None:
        key = create()
        key.rotate_secret(SHA_B, "", 60, NOW, CAUSE)
        key.rotate_secret("c" * 64, "", 0, NOW, CAUSE)
        assert key.secret_sha256 == "c" * 64
        assert key.previous_secret_sha256 is None
        assert key.previous_secret_valid_until is None

    def test_rotate_checks_the_new_hash(self) -> None:
        key = create()
        refused("invalid_secret_hash", key.rotate_secret, "B" * 64, "", 0, NOW, CAUSE)
        assert key.secret_sha256 == SHA_A


class TestStatus:
    def test_disable_then_enable(self) -> None:
        key = create()
        key.disable(CAUSE)
        assert key.enabled is False
        key.enable(CAUSE)
        assert key.enabled is True

    def test_rename_trims_and_checks_the_name(self) -> None:
        key = create()
        key.rename("  New name ", CAUSE)
        assert key.name == "New name"
        refused("name_required", key.rename, " ", CAUSE)
        refused("name_too_long", key.rename, "n" * 101, CAUSE)
        assert key.name == "New name"


def deleted_key() -> tuple[Organization, ApiKey]:
    org = organization()
    key = create(org, role_ids=["viewer", "editor"])
    key.delete(CAUSE)
    return org, key


LATER_COMMANDS: dict[str, Callable[[Organization, ApiKey], None]] = {
    "rename": lambda org, key: key.rename("Other", CAUSE),
    "add_location": lambda org, key: key.add_location(org, "office", CAUSE),
    "remove_location": lambda org, key: key.remove_location("plant", CAUSE),
    "add_role": lambda org, key: key.add_role(org, "auditor", CAUSE),
    "remove_role": lambda org, key: key.remove_role("editor", CAUSE),
    "toggle": lambda org, key: key.toggle_role_location("viewer", "hq", None, CAUSE),
    "rotate": lambda org, key: key.rotate_secret(SHA_B, "", 0, NOW, CAUSE),
    "disable": lambda org, key: key.disable(CAUSE),
    "enable": lambda org, key: key.enable(CAUSE),
    "delete": lambda org, key: key.delete(CAUSE),
}


class TestDelete:
    def test_delete_marks_the_key_deleted(self) -> None:
        _, key = deleted_key()
        assert key.deleted is True
        assert key.uses_location("hq") is False

    @pytest.mark.parametrize("command", sorted(LATER_COMMANDS))
    def test_every_later_command_is_refused_as_key_deleted(self, command: str) -> None:
        org, key = deleted_key()
        version = key.version
        refused("key_deleted", LATER_COMMANDS[command], org, key)
        assert key.version == version
        assert key.deleted is True

    def test_a_removed_role_still_leaves_a_deleted_key(self) -> None:
        _, key = deleted_key()
        key.drop_removed_role("editor", CAUSE)
        assert key.role_ids == ["viewer"]
        assert ("editor", "hq") not in key.matrix


class TestDropRemovedRole:
    def test_drops_the_role_and_its_cells(self) -> None:
        key = create(role_ids=["viewer", "editor"], off_cells=[("editor", "hq")])
        key.drop_removed_role("editor", CAUSE)
        assert key.role_ids == ["viewer"]
        assert cells(key) == {("viewer", "hq"): True, ("viewer", "plant"): True}

    def test_a_role_not_on_the_key_changes_nothing(self) -> None:
        key = create()
        version = key.version
        key.drop_removed_role("editor", CAUSE)
        assert key.version == version
        assert key.role_ids == ["viewer"]

    def test_uses_location_only_for_locations_on_the_key(self) -> None:
        key = create()
        assert key.uses_location("hq") is True
        assert key.uses_location("office") is False
