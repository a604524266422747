"""Every input limit as a guard on the aggregates, at the real numbers: at the limit a value is
taken, one past it is refused with its code and nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.keys.domain import ApiKey, Cause, DomainError, Organization
from services.keys.domain import rules as r

CAUSE = Cause("cmd-1", "alice")
SHA = "a" * 64


def refused(code: str, action: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    with pytest.raises(DomainError) as caught:
        action(*args, **kwargs)
    assert caught.value.code == code


def organization(locations: int = 2, roles: int = 1) -> Organization:
    org = Organization.register("org-1", CAUSE)
    org.enable_api_module(CAUSE)
    org.grant_api_administrator("alice", CAUSE)
    for i in range(locations):
        org.define_location(f"L{i}", f"Location {i}", None, CAUSE)
    for i in range(roles):
        org.define_role(f"R{i}", f"Role {i}", [["view", "everywhere"]], CAUSE)
    org.collect_events()
    return org


def create(org: Organization, locations: list[str], roles: list[str]) -> ApiKey:
    return ApiKey.create(
        org,
        "key-1",
        name="Integration",
        location_ids=locations,
        role_ids=roles,
        off_cells=[],
        secret_sha256=SHA,
        secret_hint="ak_1",
        expires_at=None,
        cause=CAUSE,
    )


def permissions(count: int, length: int = 10) -> list[list[str]]:
    return [[f"p{i}".ljust(length, "x"), "location_only"] for i in range(count)]


class TestStrings:
    def test_a_permission_name_at_its_limit_is_taken(self) -> None:
        org = organization()
        name = "p" * r.PERMISSION_NAME_MAX
        org.define_role("big", "Big", [[name, "everywhere"]], CAUSE)
        assert org.roles["big"].permissions == ((name, "everywhere"),)

    @pytest.mark.parametrize("action", ["define", "change"])
    def test_a_longer_permission_name_is_value_too_long(self, action: str) -> None:
        org = organization()
        too_long = [["p" * (r.PERMISSION_NAME_MAX + 1), "everywhere"]]
        if action == "define":
            refused("value_too_long", org.define_role, "big", "Big", too_long, CAUSE)
        else:
            refused("value_too_long", org.change_role_permissions, "R0", too_long, CAUSE)
        assert org.pending_events == []

    def test_a_permission_name_is_measured_after_trimming(self) -> None:
        org = organization()
        padded = "  " + "p" * r.PERMISSION_NAME_MAX + "  "
        org.define_role("big", "Big", [[padded, "everywhere"]], CAUSE)
        assert org.roles["big"].permissions[0][0] == "p" * r.PERMISSION_NAME_MAX

    def test_the_existing_name_and_hint_codes_stay(self) -> None:
        refused("name_too_long", r.clean_name, "n" * (r.MAX_NAME + 1))
        refused("invalid_secret_hint", r.check_secret, SHA, "h" * (r.HINT_MAX + 1))
        refused("invalid_secret_hash", r.check_secret, SHA + "a", "")


class TestRoles:
    def test_a_role_with_the_most_permissions_is_taken(self) -> None:
        org = organization()
        org.define_role("big", "Big", permissions(r.PERMISSIONS_PER_ROLE), CAUSE)
        assert len(org.roles["big"].permissions) == r.PERMISSIONS_PER_ROLE

    def test_one_permission_more_is_too_many_permissions(self) -> None:
        org = organization()
        more = permissions(r.PERMISSIONS_PER_ROLE + 1)
        refused("too_many_permissions", org.define_role, "big", "Big", more, CAUSE)
        refused("too_many_permissions", org.change_role_permissions, "R0", more, CAUSE)
        assert org.pending_events == []

    def test_repeated_permissions_count_once(self) -> None:
        org = organization()
        repeated = permissions(r.PERMISSIONS_PER_ROLE) * 2
        org.change_role_permissions("R0", repeated, CAUSE)
        assert len(org.roles["R0"].permissions) == r.PERMISSIONS_PER_ROLE


class TestOrganization:
    def test_the_most_locations_are_taken_and_one_more_is_organization_too_large(self) -> None:
        org = organization(locations=0)
        for i in range(r.LOCATIONS_PER_ORGANIZATION):
            org.define_location(f"L{i}", "L", "L0" if i else None, CAUSE)
        org.collect_events()
        refused("organization_too_large", org.define_location, "one-more", "X", None, CAUSE)
        assert len(org.locations) == r.LOCATIONS_PER_ORGANIZATION
        assert org.pending_events == []

    def test_a_removed_location_makes_room(self) -> None:
        org = organization(locations=0)
        for i in range(r.LOCATIONS_PER_ORGANIZATION):
            org.define_location(f"L{i}", "L", None, CAUSE)
        org.remove_location("L7", False, CAUSE)
        org.define_location("new", "New", None, CAUSE)
        assert "new" in org.locations

    def test_the_most_roles_are_taken_and_one_more_is_organization_too_large(self) -> None:
        org = organization(roles=r.ROLES_PER_ORGANIZATION)
        refused("organization_too_large", org.define_role, "one-more", "X", [], CAUSE)
        assert len(org.roles) == r.ROLES_PER_ORGANIZATION
        assert org.pending_events == []


class TestKeys:
    def test_a_key_with_the_most_locations_and_roles_is_created(self) -> None:
        org = organization(r.LOCATIONS_PER_KEY, r.ROLES_PER_KEY)
        locations = [f"L{i}" for i in range(r.LOCATIONS_PER_KEY)]
        roles = [f"R{i}" for i in range(r.ROLES_PER_KEY)]
        key = create(org, locations, roles)
        assert len(key.matrix) == r.LOCATIONS_PER_KEY * r.ROLES_PER_KEY

    def test_creating_with_one_location_more_is_too_many_locations(self) -> None:
        org = organization(r.LOCATIONS_PER_KEY + 1)
        locations = [f"L{i}" for i in range(r.LOCATIONS_PER_KEY + 1)]
        refused("too_many_locations", create, org, locations, [])

    def test_creating_with_one_role_more_is_too_many_roles(self) -> None:
        org = organization(roles=r.ROLES_PER_KEY + 1)
        roles = [f"R{i}" for i in range(r.ROLES_PER_KEY + 1)]
        refused("too_many_roles", create, org, ["L0"], roles)

    def test_repeated_ids_count_once(self) -> None:
        org = organization(r.LOCATIONS_PER_KEY, r.ROLES_PER_KEY)
        locations = [f"L{i}" for i in range(r.LOCATIONS_PER_KEY)] * 2
        roles = [f"R{i}" for i in range(r.ROLES_PER_KEY)] * 2
        key = create(org, locations, roles)
        assert len(key.location_ids) == r.LOCATIONS_PER_KEY

    def test_adding_past_the_limits_is_refused(self) -> None:
        org = organization(r.LOCATIONS_PER_KEY + 1, r.ROLES_PER_KEY + 1)
        key = create(
            org,
            [f"L{i}" for i in range(r.LOCATIONS_PER_KEY)],
            [f"R{i}" for i in range(r.ROLES_PER_KEY)],
        )
        key.collect_events()
        refused("too_many_locations", key.add_location, org, f"L{r.LOCATIONS_PER_KEY}", CAUSE)
        refused("too_many_roles", key.add_role, org, f"R{r.ROLES_PER_KEY}", CAUSE)
        assert key.pending_events == []

    def test_a_removed_location_makes_room_on_the_key(self) -> None:
        org = organization(r.LOCATIONS_PER_KEY + 1)
        key = create(org, [f"L{i}" for i in range(r.LOCATIONS_PER_KEY)], [])
        key.remove_location("L0", CAUSE)
        key.add_location(org, f"L{r.LOCATIONS_PER_KEY}", CAUSE)
        assert len(key.location_ids) == r.LOCATIONS_PER_KEY
