"""Projection rules: effective permissions, statuses and secrets, folded from contract events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from contracts import events as ev
from contracts.queries import Reason
from contracts.tokens import token_sha256
from services.projections import model as rules
from services.projections.model import verification
from tests.support.projection_builders import T0, EventLog

NOW = T0 + timedelta(days=1)


def tree() -> EventLog:
    """hq -> plant -> line; hq -> office; a lone root 'other'."""
    log = EventLog().setup()
    log.location("hq")
    log.location("plant", "hq")
    log.location("line", "plant")
    log.location("office", "hq")
    log.location("other")
    return log


def allowed(
    model: rules.ReadModel,
    location: str,
    permission: str = "view",
    *,
    key: str = "k1",
    own: bool = False,
) -> bool:
    return rules.check(model, key, permission, location, own, NOW).allowed


def where(model: rules.ReadModel, permission: str = "view", *, own: bool = False) -> set[str]:
    locations = ("hq", "plant", "line", "office", "other")
    return {loc for loc in locations if allowed(model, loc, permission, own=own)}


class TestScopes:
    @pytest.mark.parametrize(
        ("scope", "expected"),
        [
            ("everywhere", {"hq", "plant", "line", "office", "other"}),
            ("location_and_below", {"plant", "line"}),
            ("location_only", {"plant"}),
            ("own_items", set()),
        ],
    )
    def test_scope_decides_where_a_permission_applies(self, scope: str, expected: set[str]):
        log = tree()
        log.role("r", ("view", scope))
        log.create_key("k1", ["plant"], ["r"])
        assert where(rules.fold(log.events)) == expected

    def test_own_items_applies_below_the_location_for_the_keys_items_only(self):
        log = tree()
        log.role("r", ("view", "own_items"))
        log.create_key("k1", ["plant"], ["r"])
        model = rules.fold(log.events)
        assert where(model, own=True) == {"plant", "line"}
        assert where(model, own=False) == set()

    def test_reasons_name_the_role_and_the_key_location_that_granted(self):
        log = tree()
        log.role("r", ("view", "location_and_below"))
        log.role("s", ("view", "location_only"))
        log.create_key("k1", ["hq", "line"], ["r", "s"])
        decision = rules.check(rules.fold(log.events), "k1", "view", "line", False, NOW)
        assert decision == rules.Decision(
            True,
            [
                Reason("r", "hq", "location_and_below"),
                Reason("r", "line", "location_and_below"),
                Reason("s", "line", "location_only"),
            ],
            None,
        )

    def test_a_location_outside_the_organization_is_not_granted(self):
        log = tree()
        log.role("r", ("view", "everywhere"))
        log.create_key("k1", ["hq"], ["r"])
        decision = rules.check(rules.fold(log.events), "k1", "view", "elsewhere", False, NOW)
        assert decision.denied_because == "not_granted"


class TestInheritance:
    def test_moving_a_location_moves_what_it_inherits(self):
        log = tree()
        log.role("r", ("view", "location_and_below"))
        log.create_key("k1", ["plant"], ["r"])
        model = rules.fold(log.events)
        assert where(model) == {"plant", "line"}
        rules.apply(model, log.move("office", "plant"))
        assert where(model) == {"plant", "line", "office"}
        rules.apply(model, log.move("line", "other"))
        assert where(model) == {"plant", "office"}

    def test_a_new_child_location_inherits_at_once(self):
        log = tree()
        log.role("r", ("view", "location_and_below"))
        log.create_key("k1", ["plant"], ["r"])
        model = rules.fold(log.events)
        assert not allowed(model, "cell")
        rules.apply(model, log.location("cell", "line"))
        assert allowed(model, "cell")

    def test_a_removed_location_grants_nothing(self):
        log = tree()
        log.role("r", ("view", "location_only"))
        log.create_key("k1", ["office"], ["r"])
        model = rules.fold(log.events)
        rules.apply(model, log.org(ev.LocationRemoved, location_id="office"))
        assert where(model) == set()


class TestMatrix:
    def test_a_cell_switched_off_stops_the_role_at_that_location_only(self):
        log = tree()
        log.role("r", ("view", "location_only"))
        log.create_key("k1", ["plant", "office"], ["r"], off=(("r", "plant"),))
        model = rules.fold(log.events)
        assert where(model) == {"office"}
        rules.apply(model, log.toggle("k1", "r", "plant", True))
        assert where(model) == {"plant", "office"}
        rules.apply(model, log.toggle("k1", "r", "office", False))
        assert where(model) == {"plant"}

    def test_key_roles_and_locations_follow_key_events(self):
        log = tree()
        log.role("r", ("view", "location_only"))
        log.create_key("k1", ["plant"], [])
        model = rules.fold(log.events)
        assert where(model) == set()
        rules.apply(model, log.key(ev.KeyRoleAdded, "k1", {"role_id": "r"}, role_ids=["r"]))
        assert where(model) == {"plant"}
        fields = {"location_id": "office"}
        rules.apply(
            model, log.key(ev.KeyLocationAdded, "k1", fields, location_ids=["plant", "office"])
        )
        assert where(model) == {"plant", "office"}
        rules.apply(model, log.key(ev.KeyRoleRemoved, "k1", {"role_id": "r"}, role_ids=[]))
        assert where(model) == set()


class TestRoleChanges:
    def test_changing_a_roles_permissions_changes_every_key_holding_it(self):
        log = tree()
        log.role("r", ("view", "location_only"))
        log.create_key("k1", ["plant"], ["r"])
        log.create_key("k2", ["office"], ["r"])
        model = rules.fold(log.events)
        assert allowed(model, "office", key="k2")
        rules.apply(model, log.role("r", ("edit", "location_only"), changed=True))
        assert not allowed(model, "plant", key="k1")
        assert not allowed(model, "office", key="k2")
        assert allowed(model, "plant", "edit", key="k1")
        assert allowed(model, "office", "edit", key="k2")

    def test_a_removed_role_grants_nothing(self):
        log = tree()
        log.role("r", ("view", "everywhere"))
        log.create_key("k1", ["plant"], ["r"])
        model = rules.fold(log.events)
        rules.apply(model, log.org(ev.RoleRemoved, role_id="r"))
        assert where(model) == set()


class TestStatus:
    @pytest.mark.parametrize(
        ("changes", "module_on", "expected"),
        [
            ({"deleted": True, "enabled": False}, False, "deleted"),
            ({"enabled": False}, False, "api_module_disabled"),
            ({"enabled": False}, True, "disabled"),
            ({"expires_at": NOW}, True, "expired"),
            ({"expires_at": NOW - timedelta(seconds=1), "enabled": False}, True, "disabled"),
            ({"expires_at": NOW + timedelta(seconds=1)}, True, None),
        ],
    )
    def test_inactive_keys_are_denied_in_precedence_order(self, changes, module_on, expected):
        log = tree()
        log.role("r", ("view", "everywhere"))
        log.create_key("k1", ["hq"], ["r"], **changes)
        if not module_on:
            log.org(ev.ApiModuleDisabled)
        model = rules.fold(log.events)
        decision = rules.check(model, "k1", "view", "hq", False, NOW)
        assert decision.denied_because == expected
        assert decision.allowed == (expected is None)
        status, listing = rules.effective_permissions(model, "k1", NOW)
        assert status == (expected or "active")
        assert bool(listing) == (expected is None)

    def test_unknown_key_is_denied_first(self):
        model = rules.fold(tree().events)
        assert rules.check(model, "nope", "view", "hq", False, NOW).denied_because == "unknown_key"
        assert rules.key_status(model, "nope", NOW) == "unknown"

    def test_expiry_passes_at_query_time_without_an_event(self):
        log = tree()
        log.role("r", ("view", "everywhere"))
        log.create_key("k1", ["hq"], ["r"], expires_at=NOW)
        model = rules.fold(log.events)
        before = rules.check(model, "k1", "view", "hq", False, NOW - timedelta(microseconds=1))
        assert before.allowed
        assert rules.check(model, "k1", "view", "hq", False, NOW).denied_because == "expired"

    def test_module_re_enabled_restores_permissions(self):
        log = tree()
        log.role("r", ("view", "everywhere"))
        log.create_key("k1", ["hq"], ["r"])
        log.org(ev.ApiModuleDisabled)
        model = rules.fold(log.events)
        assert not allowed(model, "hq")
        rules.apply(model, log.org(ev.ApiModuleEnabled))
        assert allowed(model, "hq")

    def test_an_organization_never_enabled_has_the_module_disabled(self):
        log = EventLog()
        log.location("hq")
        log.role("r", ("view", "everywhere"))
        log.create_key("k1", ["hq"], ["r"])
        model = rules.fold(log.events)
        assert rules.check(model, "k1", "view", "hq", False, NOW).denied_because == (
            "api_module_disabled"
        )


class TestSecrets:
    def rotated(self) -> rules.ReadModel:
        log = tree()
        log.create_key("k1", ["hq"], [], secret_sha256=token_sha256("old"))
        log.key(
            ev.KeySecretRotated,
            "k1",
            secret_sha256=token_sha256("new"),
            previous_secret_sha256=token_sha256("old"),
            previous_secret_valid_until=NOW,
        )
        return rules.fold(log.events)

    def test_the_current_secret_verifies(self):
        found = verification.verify_secret(
            self.rotated(), token_sha256("new"), NOW + timedelta(days=9)
        )
        assert found == verification.Verification("VALID", "k1", "org-1")

    def test_the_old_secret_verifies_during_the_grace_period(self):
        at = NOW - timedelta(seconds=1)
        assert verification.verify_secret(self.rotated(), token_sha256("old"), at).code == "VALID"

    def test_the_old_secret_never_verifies_after_the_grace_period(self):
        for at in (NOW, NOW + timedelta(days=365)):
            found = verification.verify_secret(self.rotated(), token_sha256("old"), at)
            assert found == verification.Verification("NOT_FOUND", None, None)

    def test_a_second_rotation_forgets_the_first_secret(self):
        log = tree()
        log.create_key("k1", ["hq"], [], secret_sha256=token_sha256("a"))
        for old, new in (("a", "b"), ("b", "c")):
            log.key(
                ev.KeySecretRotated,
                "k1",
                secret_sha256=token_sha256(new),
                previous_secret_sha256=token_sha256(old),
                previous_secret_valid_until=NOW + timedelta(days=1),
            )
        model = rules.fold(log.events)
        assert verification.verify_secret(model, token_sha256("a"), NOW).code == "NOT_FOUND"
        assert verification.verify_secret(model, token_sha256("b"), NOW).code == "VALID"

    def test_status_codes_of_inactive_keys(self):
        log = tree()
        log.create_key("k1", ["hq"], [], secret_sha256=token_sha256("s"))
        model = rules.fold(log.events)
        rules.apply(model, log.key(ev.ApiKeyDisabled, "k1", enabled=False))
        assert verification.verify_secret(model, token_sha256("s"), NOW).code == "DISABLED"
        rules.apply(model, log.key(ev.ApiKeyDeleted, "k1", deleted=True))
        assert verification.verify_secret(model, token_sha256("s"), NOW).code == "DELETED"


class TestFolding:
    def test_an_event_at_or_below_the_position_changes_nothing(self):
        log = tree()
        log.role("r", ("view", "everywhere"))
        log.create_key("k1", ["hq"], ["r"])
        model = rules.fold(log.events)
        disabled = log.key(ev.ApiKeyDisabled, "k1", enabled=False)
        stale = ev.ApiKeyDisabled(
            position=model.position,
            organization_id="org-1",
            occurred_at=T0,
            key_id="k1",
            key=disabled.key,
        )
        assert rules.apply(model, stale) is None
        assert allowed(model, "hq")
        assert rules.apply(model, disabled) == rules.Touched("org-1", "k1")
        assert rules.apply(model, disabled) is None
        assert not allowed(model, "hq")

    def test_organizations_keys_with_a_permission(self):
        log = tree()
        log.role("r", ("view", "location_and_below"))
        log.create_key("k1", ["plant"], ["r"])
        log.create_key("k2", ["office"], ["r"])
        log.create_key("k3", ["hq"], ["r"], enabled=False)
        model = rules.fold(log.events)
        holders = rules.keys_with_permission(model, "org-1", "view", "line", NOW)
        assert [key_id for key_id, _ in holders] == ["k1"]
        assert rules.keys_with_permission(model, "org-2", "view", "line", NOW) == []


class TestAnswerTable:
    def test_the_shared_answers_stay_bounded_and_checks_stay_right(self):
        log = tree()
        for i in range(40):  # every role change makes reason sets no key holds any more
            log.role(f"r{i}", ("view", "location_only"))
            log.create_key(f"k{i}", ["plant"], [f"r{i}"])
        model = rules.fold(log.events)
        model.answer_limit = 10
        for i in range(40):
            assert allowed(model, "plant", key=f"k{i}")
            reasons = rules.check(model, f"k{i}", "view", "plant", False, NOW).reasons
            assert reasons == [Reason(f"r{i}", "plant", "location_only")]
            assert len(model.answers) <= model.answer_limit
        assert not allowed(model, "office", key="k3")
