"""Organization rules: the API module switch, API Administrators, the location tree, roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.keys.domain import Cause, DomainError, Organization

CAUSE = Cause("cmd-1")


def org_with_tree() -> Organization:
    """hq -> plant -> line; a lone root 'other'."""
    org = Organization.register("org-1", CAUSE)
    org.define_location("hq", "HQ", None, CAUSE)
    org.define_location("plant", "Plant", "hq", CAUSE)
    org.define_location("line", "Line", "plant", CAUSE)
    org.define_location("other", "Other", None, CAUSE)
    return org


def refused(code: str, action: Callable[..., object], *args: Any) -> None:
    with pytest.raises(DomainError) as caught:
        action(*args)
    assert caught.value.code == code


class TestApiModuleAndAdministrators:
    def test_a_new_organization_has_the_module_off_and_no_administrators(self) -> None:
        org = Organization.register("org-1", CAUSE)
        assert org.organization_id == "org-1"
        assert org.api_module_enabled is False
        assert org.administrators == set()

    def test_enable_then_disable_the_api_module(self) -> None:
        org = Organization.register("org-1", CAUSE)
        org.enable_api_module(CAUSE)
        assert org.api_module_enabled is True
        org.disable_api_module(CAUSE)
        assert org.api_module_enabled is False

    def test_grant_and_revoke_api_administrator(self) -> None:
        org = Organization.register("org-1", CAUSE)
        org.grant_api_administrator("alice", CAUSE)
        org.grant_api_administrator("bob", CAUSE)
        assert org.administrators == {"alice", "bob"}
        org.revoke_api_administrator("alice", CAUSE)
        assert org.administrators == {"bob"}

    def test_revoking_a_user_who_is_not_an_administrator_changes_nothing(self) -> None:
        org = Organization.register("org-1", CAUSE)
        org.grant_api_administrator("bob", CAUSE)
        org.revoke_api_administrator("nobody", CAUSE)
        assert org.administrators == {"bob"}

    def test_key_manager_needs_the_module_enabled(self) -> None:
        org = Organization.register("org-1", CAUSE)
        org.grant_api_administrator("alice", CAUSE)
        refused("api_module_disabled", org.require_key_manager, "alice")

    def test_module_disabled_is_reported_before_missing_administrator(self) -> None:
        org = Organization.register("org-1", CAUSE)
        refused("api_module_disabled", org.require_key_manager, "nobody")

    def test_key_manager_needs_api_administrator(self) -> None:
        org = Organization.register("org-1", CAUSE)
        org.enable_api_module(CAUSE)
        refused("not_api_administrator", org.require_key_manager, "mallory")

    def test_an_enabled_administrator_is_a_key_manager(self) -> None:
        org = Organization.register("org-1", CAUSE)
        org.enable_api_module(CAUSE)
        org.grant_api_administrator("alice", CAUSE)
        org.require_key_manager("alice")  # does not raise

    def test_a_revoked_administrator_is_no_longer_a_key_manager(self) -> None:
        org = Organization.register("org-1", CAUSE)
        org.enable_api_module(CAUSE)
        org.grant_api_administrator("alice", CAUSE)
        org.revoke_api_administrator("alice", CAUSE)
        refused("not_api_administrator", org.require_key_manager, "alice")

    def test_disabling_the_module_stops_key_management(self) -> None:
        org = Organization.register("org-1", CAUSE)
        org.enable_api_module(CAUSE)
        org.grant_api_administrator("alice", CAUSE)
        org.disable_api_module(CAUSE)
        refused("api_module_disabled", org.require_key_manager, "alice")


class TestDefineLocation:
    def test_define_a_root_and_a_child(self) -> None:
        org = org_with_tree()
        assert org.locations["hq"].parent_id is None
        assert org.locations["plant"].parent_id == "hq"
        assert org.locations["plant"].name == "Plant"
        assert org.children["hq"] == {"plant"}

    def test_unknown_parent_is_refused(self) -> None:
        org = org_with_tree()
        refused("unknown_location", org.define_location, "x", "X", "nowhere", CAUSE)
        assert "x" not in org.locations

    def test_duplicate_location_is_refused(self) -> None:
        org = org_with_tree()
        refused("location_exists", org.define_location, "plant", "Again", None, CAUSE)
        assert org.locations["plant"].name == "Plant"
        assert org.locations["plant"].parent_id == "hq"

    @pytest.mark.parametrize("name", ["", "   ", "\t\n"])
    def test_blank_name_is_refused(self, name: str) -> None:
        org = org_with_tree()
        refused("name_required", org.define_location, "x", name, None, CAUSE)
        assert "x" not in org.locations

    def test_name_is_trimmed(self) -> None:
        org = org_with_tree()
        org.define_location("x", "  Warehouse  ", None, CAUSE)
        assert org.locations["x"].name == "Warehouse"

    def test_name_of_100_characters_is_accepted_after_trimming(self) -> None:
        org = org_with_tree()
        org.define_location("x", "  " + "a" * 100 + "  ", None, CAUSE)
        assert org.locations["x"].name == "a" * 100

    def test_name_of_101_characters_is_refused(self) -> None:
        org = org_with_tree()
        refused("name_too_long", org.define_location, "x", "a" * 101, None, CAUSE)
        assert "x" not in org.locations


class TestRenameLocation:
    def test_rename_keeps_the_parent(self) -> None:
        org = org_with_tree()
        org.rename_location("plant", "  Factory ", CAUSE)
        assert org.locations["plant"].name == "Factory"
        assert org.locations["plant"].parent_id == "hq"

    def test_rename_unknown_location_is_refused(self) -> None:
        org = org_with_tree()
        refused("unknown_location", org.rename_location, "nowhere", "X", CAUSE)

    @pytest.mark.parametrize(
        ("name", "code"), [(" ", "name_required"), ("b" * 101, "name_too_long")]
    )
    def test_rename_checks_the_name(self, name: str, code: str) -> None:
        org = org_with_tree()
        refused(code, org.rename_location, "plant", name, CAUSE)
        assert org.locations["plant"].name == "Plant"


class TestMoveLocation:
    def test_move_under_another_parent(self) -> None:
        org = org_with_tree()
        org.move_location("line", "other", CAUSE)
        assert org.locations["line"].parent_id == "other"
        assert org.children["other"] == {"line"}
        assert "line" not in org.children["plant"]

    def test_move_to_root(self) -> None:
        org = org_with_tree()
        org.move_location("plant", None, CAUSE)
        assert org.locations["plant"].parent_id is None
        assert org.children["hq"] == set()
        assert org.locations["line"].parent_id == "plant"

    def test_move_onto_itself_is_a_cycle(self) -> None:
        org = org_with_tree()
        refused("location_cycle", org.move_location, "plant", "plant", CAUSE)
        assert org.locations["plant"].parent_id == "hq"

    @pytest.mark.parametrize(
        ("moved", "under"), [("hq", "plant"), ("hq", "line"), ("plant", "line")]
    )
    def test_move_under_a_descendant_is_a_cycle(self, moved: str, under: str) -> None:
        org = org_with_tree()
        before = dict(org.locations)
        refused("location_cycle", org.move_location, moved, under, CAUSE)
        assert org.locations == before

    def test_move_unknown_location_is_refused(self) -> None:
        org = org_with_tree()
        refused("unknown_location", org.move_location, "nowhere", "hq", CAUSE)

    def test_move_under_unknown_parent_is_refused(self) -> None:
        org = org_with_tree()
        refused("unknown_location", org.move_location, "line", "nowhere", CAUSE)
        assert org.locations["line"].parent_id == "plant"


class TestRemoveLocation:
    def test_remove_a_leaf(self) -> None:
        org = org_with_tree()
        org.remove_location("line", False, CAUSE)
        assert "line" not in org.locations
        assert org.children["plant"] == set()

    def test_a_location_with_children_stays(self) -> None:
        org = org_with_tree()
        refused("location_has_children", org.remove_location, "plant", False, CAUSE)
        assert "plant" in org.locations

    def test_a_location_used_by_a_key_stays(self) -> None:
        org = org_with_tree()
        refused("location_in_use", org.remove_location, "line", True, CAUSE)
        assert "line" in org.locations

    def test_a_parent_whose_children_moved_away_can_be_removed(self) -> None:
        org = org_with_tree()
        org.move_location("line", "other", CAUSE)
        org.remove_location("plant", False, CAUSE)
        assert "plant" not in org.locations
        assert org.children["hq"] == set()

    def test_remove_unknown_location_is_refused(self) -> None:
        org = org_with_tree()
        refused("unknown_location", org.remove_location, "nowhere", False, CAUSE)

    def test_a_removed_location_can_be_defined_again(self) -> None:
        org = org_with_tree()
        org.remove_location("other", False, CAUSE)
        org.define_location("other", "Other again", "hq", CAUSE)
        assert org.locations["other"].parent_id == "hq"


class TestRoles:
    def test_define_a_role_with_permissions(self) -> None:
        org = org_with_tree()
        org.define_role("r1", " Viewer ", [["view", "everywhere"], ["edit", "own_items"]], CAUSE)
        assert org.roles["r1"].name == "Viewer"
        assert org.roles["r1"].permissions == (("view", "everywhere"), ("edit", "own_items"))

    def test_duplicate_permissions_are_kept_once(self) -> None:
        org = org_with_tree()
        org.define_role("r1", "R", [["view", "everywhere"], ["view", "everywhere"]], CAUSE)
        assert org.roles["r1"].permissions == (("view", "everywhere"),)

    def test_duplicate_role_is_refused(self) -> None:
        org = org_with_tree()
        org.define_role("r1", "Viewer", [], CAUSE)
        refused("role_exists", org.define_role, "r1", "Other", [], CAUSE)
        assert org.roles["r1"].name == "Viewer"

    @pytest.mark.parametrize("scope", ["", "anywhere", "EVERYWHERE", "location"])
    def test_invalid_scope_is_refused(self, scope: str) -> None:
        org = org_with_tree()
        refused("invalid_scope", org.define_role, "r1", "R", [["view", scope]], CAUSE)
        assert "r1" not in org.roles

    @pytest.mark.parametrize(
        "scope", ["everywhere", "location_and_below", "location_only", "own_items"]
    )
    def test_every_documented_scope_is_accepted(self, scope: str) -> None:
        org = org_with_tree()
        org.define_role("r1", "R", [["view", scope]], CAUSE)
        assert org.roles["r1"].permissions == (("view", scope),)

    @pytest.mark.parametrize(
        ("name", "code"), [("", "name_required"), ("n" * 101, "name_too_long")]
    )
    def test_define_role_checks_the_name(self, name: str, code: str) -> None:
        org = org_with_tree()
        refused(code, org.define_role, "r1", name, [], CAUSE)
        assert "r1" not in org.roles

    def test_change_permissions_keeps_the_name(self) -> None:
        org = org_with_tree()
        org.define_role("r1", "Viewer", [["view", "everywhere"]], CAUSE)
        org.change_role_permissions("r1", [["edit", "location_only"]], CAUSE)
        assert org.roles["r1"].name == "Viewer"
        assert org.roles["r1"].permissions == (("edit", "location_only"),)

    def test_change_permissions_checks_the_scope(self) -> None:
        org = org_with_tree()
        org.define_role("r1", "Viewer", [["view", "everywhere"]], CAUSE)
        refused("invalid_scope", org.change_role_permissions, "r1", [["edit", "nope"]], CAUSE)
        assert org.roles["r1"].permissions == (("view", "everywhere"),)

    def test_change_permissions_of_unknown_role_is_refused(self) -> None:
        org = org_with_tree()
        refused("unknown_role", org.change_role_permissions, "nope", [], CAUSE)

    def test_rename_keeps_the_permissions(self) -> None:
        org = org_with_tree()
        org.define_role("r1", "Viewer", [["view", "everywhere"]], CAUSE)
        org.rename_role("r1", " Reader ", CAUSE)
        assert org.roles["r1"].name == "Reader"
        assert org.roles["r1"].permissions == (("view", "everywhere"),)

    def test_rename_unknown_role_is_refused(self) -> None:
        org = org_with_tree()
        refused("unknown_role", org.rename_role, "nope", "X", CAUSE)

    def test_rename_role_checks_the_name(self) -> None:
        org = org_with_tree()
        org.define_role("r1", "Viewer", [], CAUSE)
        refused("name_required", org.rename_role, "r1", "  ", CAUSE)
        assert org.roles["r1"].name == "Viewer"

    def test_remove_a_role(self) -> None:
        org = org_with_tree()
        org.define_role("r1", "Viewer", [], CAUSE)
        org.remove_role("r1", CAUSE)
        assert "r1" not in org.roles
        refused("unknown_role", org.require_role, "r1")

    def test_remove_unknown_role_is_refused(self) -> None:
        org = org_with_tree()
        refused("unknown_role", org.remove_role, "nope", CAUSE)


class TestEventsRebuildTheSameState:
    def test_replaying_the_events_gives_the_same_organization(self) -> None:
        org = org_with_tree()
        org.enable_api_module(CAUSE)
        org.grant_api_administrator("alice", CAUSE)
        org.move_location("line", "other", CAUSE)
        org.rename_location("hq", "Head office", CAUSE)
        org.define_role("r1", "Viewer", [["view", "everywhere"]], CAUSE)
        org.remove_location("plant", False, CAUSE)
        events = org.collect_events()
        rebuilt = None
        for event in events:
            rebuilt = event.mutate(rebuilt)
        assert rebuilt is not None
        assert rebuilt.locations == org.locations
        assert rebuilt.children == org.children
        assert rebuilt.roles == org.roles
        assert rebuilt.administrators == {"alice"}
        assert rebuilt.api_module_enabled is True


# --- invariant: the location tree never has a cycle ------------------------------------------

LOCATION_IDS = [f"l{i}" for i in range(6)]
operations = st.lists(
    st.tuples(
        st.sampled_from(["define", "move"]),
        st.sampled_from(LOCATION_IDS),
        st.one_of(st.none(), st.sampled_from(LOCATION_IDS)),
    ),
    max_size=40,
)


def walks_to_a_root(org: Organization, location_id: str) -> bool:
    seen: set[str] = set()
    current: str | None = location_id
    while current is not None:
        if current in seen:
            return False
        seen.add(current)
        current = org.locations[current].parent_id
    return True


@settings(max_examples=200, deadline=None)
@given(operations)
def test_defines_and_moves_never_create_a_cycle(ops: list[tuple[str, str, str | None]]) -> None:
    org = Organization.register("org-1", CAUSE)
    for op, location_id, parent_id in ops:
        try:
            if op == "define":
                org.define_location(location_id, location_id.upper(), parent_id, CAUSE)
            else:
                org.move_location(location_id, parent_id, CAUSE)
        except DomainError as error:
            assert error.code in {"location_exists", "unknown_location", "location_cycle"}
    for location_id in org.locations:
        assert walks_to_a_root(org, location_id), org.locations
    # the children index agrees with the parent links
    for location_id, location in org.locations.items():
        if location.parent_id is not None:
            assert location_id in org.children[location.parent_id]
    for parent_id, kids in org.children.items():
        for kid in kids:
            assert org.locations[kid].parent_id == parent_id
