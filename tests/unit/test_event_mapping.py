"""Domain events to contract events: each published event carries the resulting state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from contracts import events as e
from contracts.codec import json_encoder
from contracts.common import Permission
from services.keys.domain import ApiKey, Cause, CommandReceipt, Organization, Outcome
from services.keys.streams.mapping import is_published, to_contract

DIRECTORY = Cause("dir-1")
ALICE = Cause("cmd-7", "alice")
SHA_A = "a" * 64
SHA_B = "b" * 64
NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


def organization() -> Organization:
    org = Organization.register("org-1", DIRECTORY)
    org.enable_api_module(DIRECTORY)
    org.grant_api_administrator("alice", DIRECTORY)
    for location_id in ("hq", "plant", "office"):
        org.define_location(location_id, location_id.title(), None, DIRECTORY)
    org.define_role("viewer", "Viewer", [["view", "everywhere"]], DIRECTORY)
    org.define_role("editor", "Editor", [["edit", "location_only"]], DIRECTORY)
    org.collect_events()
    return org


def replay(events: list[Any], start: Any = None) -> list[tuple[Any, e.Event | None]]:
    """Each event mapped with the aggregate just after it, positions counting from 1."""
    aggregate = start
    out = []
    for position, event in enumerate(events, start=1):
        aggregate = event.mutate(aggregate)
        out.append((event, to_contract(event, aggregate, position)))
    return out


def matrix(state: e.KeyState) -> dict[tuple[str, str], bool]:
    cells = {(cell.role_id, cell.location_id): cell.applies for cell in state.matrix}
    assert len(cells) == len(state.matrix), "a cell is published twice"
    return cells


def key_history() -> list[tuple[Any, e.Event | None]]:
    org = organization()
    key = ApiKey.create(
        org,
        "key-1",
        name="Sync",
        location_ids=["hq", "plant"],
        role_ids=["viewer"],
        off_cells=[("viewer", "plant")],
        secret_sha256=SHA_A,
        secret_hint="ak_aa",
        expires_at=EXPIRES,
        cause=ALICE,
    )
    key.rename("Sync 2", ALICE)
    key.add_location(org, "office", ALICE)
    key.add_role(org, "editor", ALICE)
    key.toggle_role_location("editor", "hq", None, ALICE)
    key.remove_location("plant", ALICE)
    key.remove_role("viewer", ALICE)
    key.rotate_secret(SHA_B, "ak_bb", 600, NOW, ALICE)
    key.disable(ALICE)
    key.enable(ALICE)
    key.delete(ALICE)
    return replay(key.collect_events())


class TestKeyEvents:
    def test_every_key_event_maps_to_its_contract_type(self) -> None:
        types = [type(contract) for _, contract in key_history()]
        assert types == [
            e.ApiKeyCreated,
            e.ApiKeyRenamed,
            e.KeyLocationAdded,
            e.KeyRoleAdded,
            e.RoleLocationToggled,
            e.KeyLocationRemoved,
            e.KeyRoleRemoved,
            e.KeySecretRotated,
            e.ApiKeyDisabled,
            e.ApiKeyEnabled,
            e.ApiKeyDeleted,
        ]

    def test_the_envelope_names_the_key_the_cause_and_the_position(self) -> None:
        for position, (event, contract) in enumerate(key_history(), start=1):
            assert isinstance(contract, e.KeyEvent)
            assert contract.position == position
            assert contract.organization_id == "org-1"
            assert contract.key_id == "key-1"
            assert contract.actor_id == "alice"
            assert contract.command_id == "cmd-7"
            assert contract.occurred_at == event.timestamp

    def test_created_carries_the_whole_new_key(self) -> None:
        (_, created), *_ = key_history()
        assert isinstance(created, e.ApiKeyCreated)
        state = created.key
        assert state.name == "Sync"
        assert state.location_ids == ["hq", "plant"]
        assert state.role_ids == ["viewer"]
        assert matrix(state) == {("viewer", "hq"): True, ("viewer", "plant"): False}
        assert (state.enabled, state.deleted) == (True, False)
        assert state.expires_at == EXPIRES
        assert (state.secret_sha256, state.secret_hint) == (SHA_A, "ak_aa")
        assert state.previous_secret_sha256 is None
        assert state.previous_secret_valid_until is None

    def test_each_event_carries_the_state_after_it(self) -> None:
        history = [contract for _, contract in key_history()]
        renamed, location_added, role_added, toggled, location_removed, role_removed = history[1:7]

        assert isinstance(renamed, e.ApiKeyRenamed)
        assert renamed.name == "Sync 2"
        assert renamed.key.name == "Sync 2"

        assert isinstance(location_added, e.KeyLocationAdded)
        assert location_added.location_id == "office"
        assert location_added.key.location_ids == ["hq", "plant", "office"]
        assert matrix(location_added.key) == {
            ("viewer", "hq"): True,
            ("viewer", "plant"): False,
            ("viewer", "office"): True,
        }

        assert isinstance(role_added, e.KeyRoleAdded)
        assert role_added.role_id == "editor"
        assert role_added.key.role_ids == ["viewer", "editor"]
        assert len(role_added.key.matrix) == 6
        assert all(matrix(role_added.key)[("editor", loc)] for loc in ("hq", "plant", "office"))

        assert isinstance(toggled, e.RoleLocationToggled)
        assert (toggled.role_id, toggled.location_id, toggled.applies) == ("editor", "hq", False)
        assert matrix(toggled.key)[("editor", "hq")] is False

        assert isinstance(location_removed, e.KeyLocationRemoved)
        assert location_removed.location_id == "plant"
        assert location_removed.key.location_ids == ["hq", "office"]
        assert matrix(location_removed.key) == {
            ("viewer", "hq"): True,
            ("viewer", "office"): True,
            ("editor", "hq"): False,
            ("editor", "office"): True,
        }

        assert isinstance(role_removed, e.KeyRoleRemoved)
        assert role_removed.role_id == "viewer"
        assert role_removed.key.role_ids == ["editor"]
        assert matrix(role_removed.key) == {("editor", "hq"): False, ("editor", "office"): True}

    def test_rotation_carries_the_new_and_the_previous_secret(self) -> None:
        rotated = key_history()[7][1]
        assert isinstance(rotated, e.KeySecretRotated)
        assert rotated.key.secret_sha256 == SHA_B
        assert rotated.key.secret_hint == "ak_bb"
        assert rotated.key.previous_secret_sha256 == SHA_A
        assert rotated.key.previous_secret_valid_until == NOW + timedelta(seconds=600)

    def test_status_events_carry_the_status(self) -> None:
        disabled, enabled, deleted = (contract for _, contract in key_history()[8:])
        assert isinstance(disabled, e.ApiKeyDisabled)
        assert (disabled.key.enabled, disabled.key.deleted) == (False, False)
        assert isinstance(enabled, e.ApiKeyEnabled)
        assert (enabled.key.enabled, enabled.key.deleted) == (True, False)
        assert isinstance(deleted, e.ApiKeyDeleted)
        assert deleted.key.deleted is True
        assert deleted.key.name == "Sync 2"

    def test_the_matrix_lists_every_cell_explicitly(self) -> None:
        for _, contract in key_history():
            assert isinstance(contract, e.KeyEvent)
            state = contract.key
            expected = {(r, loc) for r in state.role_ids for loc in state.location_ids}
            assert set(matrix(state)) == expected

    def test_contract_events_survive_the_wire(self) -> None:
        for _, contract in key_history():
            assert contract is not None
            wire = json_encoder.encode(contract)
            assert msgspec.json.decode(wire)["type"] == type(contract).__name__
            assert e.event_decoder.decode(wire) == contract


def org_history() -> list[tuple[Any, e.Event | None]]:
    org = Organization.register("org-1", DIRECTORY)
    org.enable_api_module(DIRECTORY)
    org.disable_api_module(DIRECTORY)
    org.grant_api_administrator("alice", DIRECTORY)
    org.revoke_api_administrator("alice", DIRECTORY)
    org.define_location("hq", "HQ", None, DIRECTORY)
    org.define_location("plant", "Plant", "hq", DIRECTORY)
    org.rename_location("plant", "Factory", DIRECTORY)
    org.move_location("plant", None, DIRECTORY)
    org.remove_location("plant", False, DIRECTORY)
    org.define_role("r1", "Viewer", [["view", "everywhere"]], DIRECTORY)
    org.change_role_permissions("r1", [["edit", "own_items"]], DIRECTORY)
    org.rename_role("r1", "Editor", DIRECTORY)
    org.remove_role("r1", DIRECTORY)
    return replay(org.collect_events())


class TestOrganizationEvents:
    def test_each_event_carries_the_resulting_location_or_role(self) -> None:
        contracts = [contract for _, contract in org_history()]
        assert contracts == [
            e.OrganizationRegistered(**envelope(contracts[0])),
            e.ApiModuleEnabled(**envelope(contracts[1])),
            e.ApiModuleDisabled(**envelope(contracts[2])),
            e.ApiAdministratorGranted(**envelope(contracts[3]), user_id="alice"),
            e.ApiAdministratorRevoked(**envelope(contracts[4]), user_id="alice"),
            e.LocationDefined(
                **envelope(contracts[5]), location_id="hq", name="HQ", parent_id=None
            ),
            e.LocationDefined(
                **envelope(contracts[6]), location_id="plant", name="Plant", parent_id="hq"
            ),
            e.LocationRenamed(
                **envelope(contracts[7]), location_id="plant", name="Factory", parent_id="hq"
            ),
            e.LocationMoved(
                **envelope(contracts[8]), location_id="plant", name="Factory", parent_id=None
            ),
            e.LocationRemoved(**envelope(contracts[9]), location_id="plant"),
            e.RoleDefined(
                **envelope(contracts[10]),
                role_id="r1",
                name="Viewer",
                permissions=[Permission("view", "everywhere")],
            ),
            e.RolePermissionsChanged(
                **envelope(contracts[11]),
                role_id="r1",
                name="Viewer",
                permissions=[Permission("edit", "own_items")],
            ),
            e.RoleRenamed(
                **envelope(contracts[12]),
                role_id="r1",
                name="Editor",
                permissions=[Permission("edit", "own_items")],
            ),
            e.RoleRemoved(**envelope(contracts[13]), role_id="r1"),
        ]

    def test_the_envelope_names_the_organization_and_the_position(self) -> None:
        for position, (event, contract) in enumerate(org_history(), start=1):
            assert isinstance(contract, e.OrganizationEvent)
            assert contract.position == position
            assert contract.organization_id == "org-1"
            assert contract.command_id == "dir-1"
            assert contract.actor_id is None
            assert contract.occurred_at == event.timestamp


def envelope(contract: e.Event | None) -> dict[str, Any]:
    assert contract is not None
    return {
        "position": contract.position,
        "organization_id": "org-1",
        "occurred_at": contract.occurred_at,
        "actor_id": None,
        "command_id": "dir-1",
    }


class TestBookkeeping:
    def test_a_key_joining_its_organization_is_not_published(self) -> None:
        org = organization()
        org.register_key("key-1", ALICE)
        (event,) = org.collect_events()
        assert isinstance(event, Organization.KeyRegistered)
        assert is_published(event) is False
        assert to_contract(event, org, 99) is None

    def test_receipts_are_not_published(self) -> None:
        event = CommandReceipt.recorded(
            Outcome(
                command_id="cmd-1",
                entry_id="1-0",
                command_type="EnableApiModule",
                organization_id="org-1",
                key_id=None,
                status="accepted",
            )
        )
        assert is_published(event) is False
        receipt = event.mutate(None)  # the bare event still builds the aggregate it belongs to
        assert isinstance(receipt, CommandReceipt) and receipt.outcome.status == "accepted"

    def test_domain_events_are_published(self) -> None:
        org = Organization.register("org-1", DIRECTORY)
        org.define_location("hq", "HQ", None, DIRECTORY)
        assert all(is_published(event) for event in org.collect_events())
        assert all(is_published(event) for event, _ in key_history())
