"""ImportApiKeys through the handlers with a fake unit of work: each key passes CreateApiKey's
own guards or is refused with CreateApiKey's code, keys already there are reported as already
present, and the command's schema bounds what one import may carry."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from contracts import commands as c
from contracts.commands import IMPORT_MAX_KEYS, command_decoder
from contracts.common import Permission
from services.keys.domain import ApiKey, DomainError, Organization
from services.keys.handlers import handle
from tests.unit.test_handlers import NOW, SHA_A, FakeUnitOfWork, run


def make_world(org: str = "acme") -> FakeUnitOfWork:
    """An organization with the module on, alice as API Administrator, locations L0 > L1 > L2
    and twelve roles R0-R11."""
    uow = FakeUnitOfWork()
    run(uow, c.EnableApiModule(command_id=f"{org}-1", organization_id=org))
    run(uow, c.GrantApiAdministrator(command_id=f"{org}-2", organization_id=org, user_id="alice"))
    for i in range(3):
        parent = f"L{i - 1}" if i else None
        define = c.DefineLocation(
            command_id=f"{org}-l{i}", organization_id=org, location_id=f"L{i}", name=f"L{i}",
            parent_id=parent,
        )  # fmt: skip
        run(uow, define)
    for i in range(12):
        role = c.DefineRole(
            command_id=f"{org}-r{i}", organization_id=org, role_id=f"R{i}", name=f"R{i}",
            permissions=[Permission("view", "location_and_below")],
        )  # fmt: skip
        run(uow, role)
    return uow


def spec(key_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "key_id": key_id,
        "name": f"Key {key_id}",
        "location_ids": ["L1", "L2"],
        "role_ids": ["R1"],
        "secret_sha256": SHA_A,
        "secret_hint": "apk_...0000",
        **fields,
    }


def import_command(*keys: dict[str, Any], org: str = "acme", actor: str = "alice") -> Any:
    body = {
        "type": "ImportApiKeys",
        "command_id": "imp-1",
        "organization_id": org,
        "actor_id": actor,
        "keys": list(keys),
    }
    return command_decoder.decode(msgspec.json.encode(body))


def statuses(outcomes: Any) -> list[tuple[str, str, str | None]]:
    return [(o.key_id, o.status, o.error.code if o.error else None) for o in outcomes]


@pytest.fixture
def world() -> FakeUnitOfWork:
    return make_world()


class TestEachKeyFollowsCreateApiKeysRules:
    def test_valid_keys_are_created_as_create_api_key_creates_them(
        self, world: FakeUnitOfWork
    ) -> None:
        outcomes = handle(import_command(spec("k1"), spec("k2", expires_at=None)), world, NOW)
        events = world.commit()
        assert statuses(outcomes) == [("k1", "accepted", None), ("k2", "accepted", None)]
        created = [e for e in events if isinstance(e, ApiKey.Created)]
        assert [e.key_id for e in created] == ["k1", "k2"]
        assert world.keys["k1"].matrix == {("R1", "L1"): True, ("R1", "L2"): True}
        assert created[0].command_id == "imp-1" and created[0].actor_id == "alice"

    def test_the_organization_learns_of_an_imports_keys_in_one_event(
        self, world: FakeUnitOfWork
    ) -> None:
        handle(import_command(spec("k1"), spec("k2"), spec("k3")), world, NOW)
        events = world.commit()
        registered = [e for e in events if isinstance(e, Organization.KeysRegistered)]
        assert [e.key_ids for e in registered] == [["k1", "k2", "k3"]]
        assert list(world.organizations["acme"].key_ids)[-3:] == ["k1", "k2", "k3"]

    @pytest.mark.parametrize(
        ("fields", "code"),
        [
            ({"location_ids": ["nowhere"]}, "unknown_location"),
            ({"location_ids": []}, "locations_required"),
            ({"role_ids": ["no-role"]}, "unknown_role"),
            ({"name": "   "}, "name_required"),
            ({"name": "x" * 101}, "name_too_long"),
            ({"secret_sha256": "A" * 64}, "invalid_secret_hash"),
            ({"secret_hint": "h" * 33}, "invalid_secret_hint"),
            ({"role_ids": [f"R{i}" for i in range(11)]}, "too_many_roles"),
            ({"role_locations": [{"role_id": "R2", "location_id": "L1"}]}, "role_not_on_key"),
            ({"role_locations": [{"role_id": "R1", "location_id": "L0"}]}, "location_not_on_key"),
        ],
    )
    def test_a_refused_key_gets_create_api_keys_code_and_the_others_go_in(
        self, world: FakeUnitOfWork, fields: dict[str, Any], code: str
    ) -> None:
        command = import_command(spec("good-1"), spec("bad", **fields), spec("good-2"))
        outcomes = handle(command, world, NOW)
        world.commit()
        assert statuses(outcomes) == [
            ("good-1", "accepted", None),
            ("bad", "rejected", code),
            ("good-2", "accepted", None),
        ]
        assert "bad" not in world.keys and "bad" not in world.organizations["acme"].key_ids

    def test_the_same_fields_refused_by_create_api_key_with_the_same_code(
        self, world: FakeUnitOfWork
    ) -> None:
        create = c.CreateApiKey(
            command_id="c-x", organization_id="acme", actor_id="alice", **spec("x")
        )
        create.location_ids = ["nowhere"]
        with pytest.raises(DomainError) as refused:
            handle(create, world, NOW)
        outcomes = handle(import_command(spec("x", location_ids=["nowhere"])), world, NOW)
        assert outcomes is not None and outcomes[0].error is not None
        assert outcomes[0].error.code == refused.value.code


class TestKeysAlreadyThere:
    def test_a_key_of_the_organization_is_already_present_and_unchanged(
        self, world: FakeUnitOfWork
    ) -> None:
        handle(import_command(spec("k1")), world, NOW)
        world.commit()
        outcomes = handle(import_command(spec("k1", name="Another name"), spec("k2")), world, NOW)
        events = world.commit()
        assert statuses(outcomes) == [("k1", "already_present", None), ("k2", "accepted", None)]
        assert world.keys["k1"].name == "Key k1"
        assert not [e for e in events if getattr(e, "key_id", None) == "k1"]

    def test_importing_the_same_keys_again_changes_nothing(self, world: FakeUnitOfWork) -> None:
        keys = [spec(f"k{i}") for i in range(5)]
        handle(import_command(*keys), world, NOW)
        world.commit()
        outcomes = handle(import_command(*keys), world, NOW)
        assert {o.status for o in outcomes or []} == {"already_present"}
        assert world.commit() == []

    def test_a_key_created_by_create_api_key_is_already_present(
        self, world: FakeUnitOfWork
    ) -> None:
        run(world, c.CreateApiKey(command_id="c-k", organization_id="acme", actor_id="alice",
                                  **spec("k9")))  # fmt: skip
        outcomes = handle(import_command(spec("k9")), world, NOW)
        assert statuses(outcomes) == [("k9", "already_present", None)]

    def test_a_key_id_repeated_in_one_import_is_created_once(self, world: FakeUnitOfWork) -> None:
        outcomes = handle(import_command(spec("k1"), spec("k1")), world, NOW)
        events = world.commit()
        assert statuses(outcomes) == [("k1", "accepted", None), ("k1", "already_present", None)]
        assert len([e for e in events if isinstance(e, ApiKey.Created)]) == 1

    def test_a_key_id_of_another_organization_is_refused_as_create_api_key_refuses_it(
        self, world: FakeUnitOfWork
    ) -> None:
        handle(import_command(spec("k1")), world, NOW)
        world.commit()
        other = make_world(org="other")
        other.keys.update(world.keys)
        outcomes = handle(import_command(spec("k1"), org="other"), other, NOW)
        assert statuses(outcomes) == [("k1", "rejected", "key_exists")]


class TestTheWholeImportRefused:
    @pytest.mark.parametrize(
        ("actor", "org", "code"),
        [
            ("mallory", "acme", "not_api_administrator"),
            ("alice", "nowhere", "unknown_organization"),
        ],
    )
    def test_an_import_the_actor_may_not_make_changes_nothing(
        self, world: FakeUnitOfWork, actor: str, org: str, code: str
    ) -> None:
        with pytest.raises(DomainError) as refused:
            handle(import_command(spec("k1"), actor=actor, org=org), world, NOW)
        assert refused.value.code == code
        assert world.commit() == []


class TestSchema:
    def test_at_most_the_import_limit_of_keys(self) -> None:
        import_command(*[spec(f"k{i}") for i in range(IMPORT_MAX_KEYS)])
        with pytest.raises(msgspec.ValidationError):
            import_command(*[spec(f"k{i}") for i in range(IMPORT_MAX_KEYS + 1)])

    @pytest.mark.parametrize(
        "key",
        [
            spec("k", type="CreateApiKey"),  # only the key's own fields
            spec("k", command_id="c"),
            spec("x" * 201),  # ids of 1-200 characters
            spec("k", location_ids=["x" * 201]),
            {"key_id": "k", "name": "n", "location_ids": ["L1"]},  # secret_sha256 required
        ],
    )
    def test_a_key_outside_the_schema_fails_the_command(self, key: dict[str, Any]) -> None:
        with pytest.raises(msgspec.ValidationError):
            import_command(key)

    def test_an_import_carries_at_least_one_key(self) -> None:
        with pytest.raises(msgspec.ValidationError):
            import_command()
