"""Audit answers folded from history: as-of answers at event boundaries, explanations, diffs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import audit as a
from contracts import events as ev
from services.projections import audit
from services.projections import model as rules
from services.projections.model.answers import permissions_answer
from tests.support.audit_scenario import TICK, TimedLog, day, scenario
from tests.support.projection_builders import T0, EventLog
from tests.support.reference_world import SETUP, World, operation, to_event


def as_of(log: EventLog, key_id: str, moment: datetime) -> rules.ReadModel:
    return audit.replay(audit.key_and_organization_events(log.events, key_id, moment)).model


def can_view(log: EventLog, moment: datetime, location: str = "plant-7") -> Any:
    model = as_of(log, "key-1", moment)
    return rules.check(model, "key-1", "view_private", location, False, moment)


def outcome(decision: Any) -> Any:
    return True if decision.allowed else decision.denied_because


@pytest.mark.parametrize("index", range(13))
def test_as_of_answers_change_exactly_at_each_step(index: int) -> None:
    log, steps = scenario()
    moment, before, after = steps[index]
    assert outcome(can_view(log, moment - TICK)) == before
    assert outcome(can_view(log, moment)) == after


def test_as_of_position_is_the_last_event_folded() -> None:
    log, steps = scenario()
    folded = audit.key_and_organization_events(log.events, "key-1", steps[2][0])
    assert as_of(log, "key-1", steps[2][0]).position == folded[-1].position
    assert all(e.organization_id == "org-1" for e in folded)


def test_expiry_is_judged_at_the_as_of_moment() -> None:
    log = TimedLog().setup()
    log.location("site")
    log.role("viewer", ("view_private", "everywhere"))
    log.create_key("key-1", ["site"], ["viewer"], expires_at=day(5))
    assert can_view(log, day(5) - TICK, "site").allowed
    assert outcome(can_view(log, day(5), "site")) == "expired"


def test_a_deleted_key_answers_as_it_was_before_deletion() -> None:
    log, steps = scenario()
    answer = permissions_answer(as_of(log, "key-1", day(12)), "key-1", day(12))
    assert answer.status == "active"
    assert {loc.location_id for loc in answer.locations} == {"site", "plant-7"}
    assert permissions_answer(as_of(log, "key-1", day(14)), "key-1", day(14)).status == "deleted"


class TestExplanation:
    def explained(self, log: EventLog, location: str, moment: datetime) -> a.ReasonExplanation:
        done = audit.replay(audit.key_and_organization_events(log.events, "key-1", moment))
        decision = rules.check(done.model, "key-1", "view_private", location, False, moment)
        (chain,) = audit.explain(done, "key-1", "view_private", location, decision.reasons)
        return chain

    def positions(self, log: EventLog, type_: type[Any], **fields: Any) -> list[int]:
        return [
            e.position
            for e in log.events
            if isinstance(e, type_) and all(getattr(e, k) == v for k, v in fields.items())
        ]

    def test_the_chain_names_the_events_that_established_each_link(self) -> None:
        log, _ = scenario()
        chain = self.explained(log, "plant-7", day(12))
        role_changes = self.positions(log, ev.RolePermissionsChanged, role_id="viewer")
        assert chain.role_permission_position == role_changes[-1]
        assert chain.key_role_position == self.positions(log, ev.KeyRoleAdded)[0]
        assert chain.key_location_position == self.positions(log, ev.ApiKeyCreated)[0]
        assert chain.cell_set_by == "toggle"
        assert chain.cell_position == self.positions(log, ev.RoleLocationToggled)[-1]
        moved_back = self.positions(log, ev.LocationMoved, location_id="plant-7")[-1]
        assert chain.path == [
            a.LocationLink(location_id="plant-7", parent_id="site", position=moved_back)
        ]

    def test_an_untoggled_cell_dates_from_the_role_or_location_added_last(self) -> None:
        log, _ = scenario()
        chain = self.explained(log, "site", day(2))
        assert chain.cell_set_by == "default"
        assert chain.cell_position == self.positions(log, ev.KeyRoleAdded)[0]
        assert chain.path == []
        role_defined = self.positions(log, ev.RoleDefined, role_id="viewer")[0]
        assert chain.role_permission_position == role_defined

    def test_a_role_change_that_keeps_the_permission_keeps_its_origin(self) -> None:
        log = TimedLog().setup()
        log.location("site")
        defined = log.role("viewer", ("view_private", "everywhere")).position
        log.role("viewer", ("view_private", "everywhere"), ("edit", "everywhere"), changed=True)
        log.create_key("key-1", ["site"], ["viewer"])
        assert self.explained(log, "site", day(1)).role_permission_position == defined

    def test_a_deep_path_lists_every_link_from_the_key_location_down(self) -> None:
        log = TimedLog().setup()
        top = log.location("top").position
        mid = log.location("mid").position
        low = log.location("low", "mid").position
        moved = log.move("mid", "top").position
        log.role("viewer", ("view_private", "location_and_below"))
        log.create_key("key-1", ["top"], ["viewer"])
        chain = self.explained(log, "low", day(1))
        assert top < mid
        assert [(link.location_id, link.parent_id, link.position) for link in chain.path] == [
            ("mid", "top", moved),
            ("low", "mid", low),
        ]


def test_diff_lists_permissions_gained_and_lost() -> None:
    log, _ = scenario()
    earlier, later = as_of(log, "key-1", day(4)), as_of(log, "key-1", day(7))
    changed = audit.diff("key-1", earlier, day(4), later, day(7))
    assert changed.lost == [
        a.PermissionChange(
            permission="view_private", location_id="plant-7", scope="location_and_below"
        ),
        a.PermissionChange(
            permission="view_private", location_id="site", scope="location_and_below"
        ),
    ]
    assert changed.gained == [
        a.PermissionChange(permission="view_private", location_id="site", scope="location_only")
    ]
    assert (changed.from_status, changed.to_status) == ("active", "active")


def test_history_changes_show_the_event_fields_and_the_key_fields_that_moved() -> None:
    log, _ = scenario()
    key_events = [e for e in log.events if isinstance(e, ev.KeyEvent)]
    entries = audit.history_entries(key_events, None)
    assert entries[0].type == "ApiKeyCreated"
    assert entries[0].changes["location_ids"] == ["site"]
    assert entries[0].changes["secret"] == "set"
    assert entries[1].changes == {"role_id": "viewer", "role_ids": {"from": [], "to": ["viewer"]}}
    assert entries[2].changes["applies"] is False
    assert entries[-1].changes == {"deleted": {"from": False, "to": True}}


# --- property: an as-of answer equals the live answer recorded at that step ---

STEP = timedelta(hours=1)  # 40 steps cross the reference test's expiry times (T0 + 1 day)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operation, min_size=1, max_size=40))
def test_as_of_equals_the_live_answer_at_every_step(ops: list[tuple[Any, ...]]) -> None:
    world, events, recorded = World(), [], []
    live = rules.ReadModel()
    for index, op in enumerate([*SETUP, *ops]):
        event = to_event(world, op, len(events) + 1)
        if event is None:
            continue
        moment = T0 + index * STEP
        event = msgspec.structs.replace(event, occurred_at=moment)
        events.append(event)
        rules.apply(live, event)
        for key_id in ("k1", "k2", "k3"):
            answer = msgspec.to_builtins(permissions_answer(live, key_id, moment))
            recorded.append((key_id, moment, answer))
    for key_id, moment, answer in recorded:
        folded = as_of_events(events, key_id, moment)
        got = msgspec.to_builtins(permissions_answer(folded, key_id, moment))
        answer.pop("position"), got.pop("position")
        assert got == answer, (key_id, moment)


def as_of_events(events: list[ev.AnyEvent], key_id: str, moment: datetime) -> rules.ReadModel:
    return audit.replay(audit.key_and_organization_events(events, key_id, moment)).model


def test_a_cell_listed_explicitly_at_creation_but_never_toggled_is_a_default() -> None:
    """The keys service lists every matrix cell in the key state; only a toggle sets one."""
    from contracts.common import MatrixCell, Permission

    org = "acme"
    state = ev.KeyState(
        name="k",
        location_ids=["plant-7", "plant-8"],
        role_ids=["viewer"],
        matrix=[MatrixCell("viewer", "plant-7", True), MatrixCell("viewer", "plant-8", True)],
        enabled=True,
        deleted=False,
        expires_at=None,
        secret_sha256="a" * 64,
        secret_hint="h",
    )
    events: list[ev.AnyEvent] = [
        ev.OrganizationRegistered(position=1, organization_id=org, occurred_at=T0),
        ev.ApiModuleEnabled(position=2, organization_id=org, occurred_at=T0),
        ev.LocationDefined(
            position=3,
            organization_id=org,
            occurred_at=T0,
            location_id="plant-7",
            name="Plant 7",
            parent_id=None,
        ),
        ev.LocationDefined(
            position=4,
            organization_id=org,
            occurred_at=T0,
            location_id="plant-8",
            name="Plant 8",
            parent_id=None,
        ),
        ev.RoleDefined(
            position=5,
            organization_id=org,
            occurred_at=T0,
            role_id="viewer",
            name="Viewer",
            permissions=[Permission("view_private", "location_only")],
        ),
        ev.ApiKeyCreated(
            position=6, organization_id=org, occurred_at=T0, key_id="key-1", key=state
        ),
    ]
    done = audit.replay(events)
    decision = rules.check(done.model, "key-1", "view_private", "plant-7", False, T0)
    (chain,) = audit.explain(done, "key-1", "view_private", "plant-7", decision.reasons)
    assert (chain.cell_set_by, chain.cell_position) == ("default", 6)
    entry = audit.history_entries([events[-1]], None)[0]  # type: ignore[list-item]
    assert entry.changes["secret"] == "set" and entry.changes["previous_secret"] == "none"
