"""The command handlers through a fake unit of work (aggregates in a dict, no store, no
Redis): each command calls the right aggregate, refusals carry their error codes and change
nothing, and what changed is handed back to be saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts import commands as c
from contracts.common import Permission, RoleLocation
from services.keys.domain import ApiKey, DomainError, Organization
from services.keys.handlers import handle

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
SHA_A, SHA_B = "a" * 64, "b" * 64


class FakeUnitOfWork:
    """What the processor gives a handler, kept in memory; ``commit`` is the save."""

    def __init__(self) -> None:
        self.organizations: dict[str, Organization] = {}
        self.keys: dict[str, ApiKey] = {}
        self.touched: list[Organization | ApiKey] = []
        self.committed: list[Any] = []

    def organization(self, organization_id: str) -> Organization | None:
        return self.organizations.get(organization_id)

    def key(self, key_id: str) -> ApiKey | None:
        return self.keys.get(key_id)

    def key_exists(self, key_id: str) -> bool:
        return key_id in self.keys

    def touch(self, *aggregates: Organization | ApiKey) -> None:
        for aggregate in aggregates:
            if aggregate not in self.touched:
                self.touched.append(aggregate)

    def commit(self) -> list[Any]:
        events = [event for aggregate in self.touched for event in aggregate.collect_events()]
        for aggregate in self.touched:
            if isinstance(aggregate, Organization):
                self.organizations[aggregate.organization_id] = aggregate
            else:
                self.keys[aggregate.key_id] = aggregate
        self.touched.clear()
        self.committed.extend(events)
        return events


_ids = iter(range(1_000_000))


def run(uow: FakeUnitOfWork, command: c.AnyCommand) -> list[Any]:
    handle(command, uow, NOW)
    return uow.commit()


def refused(uow: FakeUnitOfWork, command: c.AnyCommand) -> str:
    """The error code of a refused command; asserts that nothing changed."""
    with pytest.raises(DomainError) as refusal:
        handle(command, uow, NOW)
    assert all(not aggregate.pending_events for aggregate in uow.touched)
    assert not any(a.pending_events for a in (*uow.organizations.values(), *uow.keys.values()))
    return refusal.value.code


def cid() -> str:
    return f"cmd-{next(_ids)}"


def key_cmd(command_class: Any, key_id: str = "k1", actor: str = "alice", **fields: Any) -> Any:
    return command_class(
        command_id=cid(), organization_id="org-1", actor_id=actor, key_id=key_id, **fields
    )


def create_cmd(key_id: str = "k1", **fields: Any) -> c.CreateApiKey:
    values: dict[str, Any] = {
        "name": f"Key {key_id}",
        "location_ids": ["hq", "plant"],
        "role_ids": ["viewer"],
        "secret_sha256": SHA_A,
        **fields,
    }
    return key_cmd(c.CreateApiKey, key_id, **values)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    """An organization with the module on, alice as API Administrator, two locations (plant
    under hq), and a role."""
    uow = FakeUnitOfWork()
    org = "org-1"
    run(uow, c.EnableApiModule(command_id=cid(), organization_id=org))
    run(uow, c.GrantApiAdministrator(command_id=cid(), organization_id=org, user_id="alice"))
    run(uow, c.DefineLocation(command_id=cid(), organization_id=org, location_id="hq", name="HQ"))
    run(
        uow,
        c.DefineLocation(
            command_id=cid(), organization_id=org, location_id="plant", name="P", parent_id="hq"
        ),
    )
    permissions = [Permission("view", "everywhere")]
    for role_id in ("viewer", "editor"):
        run(
            uow,
            c.DefineRole(
                command_id=cid(),
                organization_id=org,
                role_id=role_id,
                name=role_id.title(),
                permissions=permissions,
            ),
        )
    return uow


class TestDirectoryCommands:
    def test_the_first_command_for_an_organization_registers_it(self) -> None:
        uow = FakeUnitOfWork()
        events = run(uow, c.EnableApiModule(command_id="d1", organization_id="org-9"))
        assert [type(e) for e in events] == [
            Organization.Registered,
            Organization.ApiModuleEnabled,
        ]
        org = uow.organizations["org-9"]
        assert org.api_module_enabled and all(e.command_id == "d1" for e in events)

    def test_the_reference_data_is_kept_on_the_organization(self, uow: FakeUnitOfWork) -> None:
        org = uow.organizations["org-1"]
        assert org.administrators == {"alice"}
        assert org.locations["plant"].parent_id == "hq"
        assert org.roles["viewer"].permissions == (("view", "everywhere"),)

    def test_a_location_cannot_move_under_its_own_descendant(self, uow: FakeUnitOfWork) -> None:
        move = c.MoveLocation(
            command_id=cid(), organization_id="org-1", location_id="hq", new_parent_id="plant"
        )
        assert refused(uow, move) == "location_cycle"

    def test_a_location_used_by_a_key_is_not_removed(self, uow: FakeUnitOfWork) -> None:
        run(uow, create_cmd("k1", location_ids=["plant"]))
        remove = c.RemoveLocation(command_id=cid(), organization_id="org-1", location_id="plant")
        assert refused(uow, remove) == "location_in_use"
        run(uow, key_cmd(c.DeleteApiKey, "k1"))  # a deleted key no longer uses it
        events = run(uow, remove)
        assert [type(e) for e in events] == [Organization.LocationRemoved]
        assert "plant" not in uow.organizations["org-1"].locations

    def test_removing_a_role_removes_it_from_every_key(self, uow: FakeUnitOfWork) -> None:
        run(uow, create_cmd("k1", role_ids=["viewer", "editor"]))
        run(uow, create_cmd("k2", role_ids=["viewer"]))
        run(uow, create_cmd("k3", role_ids=["editor"]))
        run(uow, key_cmd(c.DeleteApiKey, "k3"))
        events = run(uow, c.RemoveRole(command_id="rr", organization_id="org-1", role_id="editor"))
        assert [(type(e), e.originator_id) for e in events] == [
            (Organization.RoleRemoved, Organization.create_id("org-1")),
            (ApiKey.RoleRemoved, ApiKey.create_id("k1")),
            (ApiKey.RoleRemoved, ApiKey.create_id("k3")),  # deleted or not
        ]
        assert "editor" not in uow.organizations["org-1"].roles
        assert [uow.keys[k].role_ids for k in ("k1", "k2", "k3")] == [["viewer"], ["viewer"], []]

    def test_an_unknown_role_is_refused(self, uow: FakeUnitOfWork) -> None:
        rename = c.RenameRole(command_id=cid(), organization_id="org-1", role_id="x", name="X")
        assert refused(uow, rename) == "unknown_role"


class TestKeyAuthorization:
    def test_a_key_command_needs_a_known_organization(self) -> None:
        assert refused(FakeUnitOfWork(), create_cmd()) == "unknown_organization"

    def test_a_key_command_needs_the_api_module(self, uow: FakeUnitOfWork) -> None:
        run(uow, c.DisableApiModule(command_id=cid(), organization_id="org-1"))
        assert refused(uow, create_cmd()) == "api_module_disabled"

    def test_a_key_command_needs_an_api_administrator(self, uow: FakeUnitOfWork) -> None:
        assert refused(uow, key_cmd(c.RenameApiKey, actor="mallory", name="x")) == (
            "not_api_administrator"
        )
        revoke = c.RevokeApiAdministrator(
            command_id=cid(), organization_id="org-1", user_id="alice"
        )
        run(uow, revoke)
        assert refused(uow, create_cmd()) == "not_api_administrator"


class TestKeyCreation:
    def test_a_created_key_joins_its_organization(self, uow: FakeUnitOfWork) -> None:
        cells = [RoleLocation("viewer", "plant")]
        events = run(uow, create_cmd("k1", role_locations=cells, secret_hint="ak_1"))
        assert [type(e) for e in events] == [Organization.KeyRegistered, ApiKey.Created]
        key = uow.keys["k1"]
        assert (key.organization_id, key.name, key.secret_hint) == ("org-1", "Key k1", "ak_1")
        assert key.matrix == {("viewer", "hq"): True, ("viewer", "plant"): False}
        assert list(uow.organizations["org-1"].key_ids) == ["k1"]
        assert all(e.actor_id == "alice" for e in events)

    def test_a_key_id_is_created_once(self, uow: FakeUnitOfWork) -> None:
        run(uow, create_cmd("k1"))
        assert refused(uow, create_cmd("k1")) == "key_exists"
        assert list(uow.organizations["org-1"].key_ids) == ["k1"]

    @pytest.mark.parametrize(
        ("fields", "code"),
        [
            ({"location_ids": []}, "locations_required"),
            ({"location_ids": ["mars"]}, "unknown_location"),
            ({"role_ids": ["pilot"]}, "unknown_role"),
            ({"name": "  "}, "name_required"),
            ({"secret_sha256": "nope"}, "invalid_secret_hash"),
            ({"role_locations": [RoleLocation("editor", "hq")]}, "role_not_on_key"),
        ],
    )
    def test_a_key_that_breaks_a_rule_is_not_created(
        self, uow: FakeUnitOfWork, fields: dict[str, Any], code: str
    ) -> None:
        assert refused(uow, create_cmd("k1", **fields)) == code
        assert "k1" not in uow.keys and not uow.organizations["org-1"].key_ids


class TestKeyCommands:
    @pytest.fixture
    def with_key(self, uow: FakeUnitOfWork) -> FakeUnitOfWork:
        run(uow, create_cmd("k1"))
        return uow

    def test_a_command_for_an_unknown_key_is_refused(self, with_key: FakeUnitOfWork) -> None:
        assert refused(with_key, key_cmd(c.DisableApiKey, "k2")) == "unknown_key"

    def test_a_key_of_another_organization_is_unknown_here(self, with_key: FakeUnitOfWork) -> None:
        other = c.RenameApiKey(
            command_id=cid(), organization_id="org-2", actor_id="alice", key_id="k1", name="x"
        )
        run(with_key, c.EnableApiModule(command_id=cid(), organization_id="org-2"))
        run(
            with_key,
            c.GrantApiAdministrator(command_id=cid(), organization_id="org-2", user_id="alice"),
        )
        assert refused(with_key, other) == "unknown_key"

    def test_each_command_changes_only_its_key(self, with_key: FakeUnitOfWork) -> None:
        events = run(with_key, key_cmd(c.RenameApiKey, name=" Renamed "))
        assert [type(e) for e in events] == [ApiKey.Renamed]
        assert with_key.keys["k1"].name == "Renamed"
        run(with_key, key_cmd(c.AddKeyRole, role_id="editor"))
        run(with_key, key_cmd(c.ToggleRoleLocation, role_id="editor", location_id="plant"))
        run(with_key, key_cmd(c.RemoveKeyLocation, location_id="hq"))
        key = with_key.keys["k1"]
        assert key.location_ids == ["plant"] and key.role_ids == ["viewer", "editor"]
        assert key.matrix == {("viewer", "plant"): True, ("editor", "plant"): False}

    def test_a_rotation_keeps_the_old_secret_for_the_grace_period(
        self, with_key: FakeUnitOfWork
    ) -> None:
        run(with_key, key_cmd(c.RotateKeySecret, secret_sha256=SHA_B, grace_seconds=60))
        key = with_key.keys["k1"]
        assert (key.secret_sha256, key.previous_secret_sha256) == (SHA_B, SHA_A)
        assert key.previous_secret_valid_until == NOW + timedelta(seconds=60)

    def test_status_changes_and_the_tombstone(self, with_key: FakeUnitOfWork) -> None:
        run(with_key, key_cmd(c.DisableApiKey))
        assert with_key.keys["k1"].enabled is False
        run(with_key, key_cmd(c.EnableApiKey))
        assert with_key.keys["k1"].enabled is True
        run(with_key, key_cmd(c.DeleteApiKey))
        assert with_key.keys["k1"].deleted is True
        assert refused(with_key, key_cmd(c.RenameApiKey, name="again")) == "key_deleted"

    def test_a_refused_key_command_leaves_the_key_as_it_was(self, with_key: FakeUnitOfWork) -> None:
        before = with_key.keys["k1"].version
        assert refused(with_key, key_cmd(c.RemoveKeyRole, role_id="editor")) == "role_not_on_key"
        assert refused(with_key, key_cmd(c.AddKeyLocation, location_id="hq")) == (
            "location_already_on_key"
        )
        assert with_key.keys["k1"].version == before
