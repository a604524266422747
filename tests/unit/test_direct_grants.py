"""A key too large to compile is answered from its cells (``model.direct``): every check, every
listing of its permissions and every holder query gives exactly what compiling it would give."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import events as ev
from contracts.common import SCOPES
from services.projections.model import grants as g
from services.projections.model import queries
from services.projections.model.direct import DirectGrants
from services.projections.model.fold import apply
from services.projections.model.listing import effective_permissions
from services.projections.model.state import ReadModel
from tests.support.projection_builders import EventLog

NOW = datetime(2025, 1, 1, tzinfo=UTC)
PERMISSIONS = ("view", "edit", "export")


@st.composite
def worlds(draw: st.DrawFn) -> EventLog:
    log = EventLog().setup()
    size = draw(st.integers(1, 12))
    for i in range(size):
        parent = draw(st.none() | st.integers(0, i - 1)) if i else None
        log.location(f"L{i}", None if parent is None else f"L{parent}")
    for r in range(draw(st.integers(1, 3))):
        perms = draw(
            st.lists(st.tuples(st.sampled_from(PERMISSIONS), st.sampled_from(SCOPES)), max_size=4)
        )
        log.role(f"R{r}", *perms)
    locations = draw(st.lists(st.sampled_from([f"L{i}" for i in range(size)]), min_size=1))
    roles = draw(st.lists(st.sampled_from(["R0", "R1", "R2", "ghost"]), max_size=3))
    off = draw(st.lists(st.tuples(st.sampled_from(roles or ["R0"]), st.sampled_from(locations))))
    log.create_key("k", locations, roles, tuple(off))
    if draw(st.booleans()) and size > 2:
        log.move("L1", None)
    return log


def model_of(log: EventLog) -> ReadModel:
    model = ReadModel()
    for event in log.events:
        apply(model, event)
    return model


def direct(model: ReadModel) -> g.KeyGrants:
    """The key answered directly, whatever its size."""
    compiled = queries.key_grants(model, "k")
    assert compiled.org is not None
    state = model.keys["k"].state
    grants = g.KeyGrants(
        compiled.org, state, {}, {}, DirectGrants(compiled.org, model.answers, state)
    )
    return grants


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_direct_answers_equal_compiled_answers(log: EventLog) -> None:
    compiled_model, direct_model = model_of(log), model_of(log)
    direct_model.grant_cache["k"] = direct(direct_model)
    targets = [*compiled_model.organizations["org-1"].locations, "nowhere"]
    for permission in (*PERMISSIONS, "other"):
        for location_id in targets:
            for own in (False, True):
                assert queries.check(
                    compiled_model, "k", permission, location_id, own, NOW
                ) == queries.check(direct_model, "k", permission, location_id, own, NOW)
    assert effective_permissions(compiled_model, "k", NOW) == (
        effective_permissions(direct_model, "k", NOW)
    )
    for location_id in targets:
        assert queries.keys_with_permission(compiled_model, "org-1", "view", location_id, NOW) == (
            queries.keys_with_permission(direct_model, "org-1", "view", location_id, NOW)
        )


def test_a_key_past_the_compile_budget_is_answered_directly() -> None:
    log = EventLog().setup()
    log.location("root")
    for i in range(g.COMPILE_BUDGET):
        log.location(f"L{i}", "root")
    log.role("R0", ("view", "location_and_below"))
    log.create_key("small", ["L0"], ["R0"])
    log.create_key("large", ["root"], ["R0"])
    model = model_of(log)
    assert queries.key_grants(model, "small").direct is None
    large = queries.key_grants(model, "large")
    assert large.direct is not None and len(large) == 0
    assert queries.check(model, "large", "view", "L7", False, NOW).allowed
    assert not queries.check(model, "large", "edit", "L7", False, NOW).allowed


def test_a_role_change_drops_a_direct_keys_answers() -> None:
    log = EventLog().setup()
    log.location("root")
    for i in range(g.COMPILE_BUDGET):
        log.location(f"L{i}", "root")
    log.role("R0", ("view", "location_and_below"))
    log.create_key("large", ["root"], ["R0"])
    model = model_of(log)
    assert queries.check(model, "large", "view", "L7", False, NOW).allowed
    apply(model, log.role("R0", ("edit", "location_and_below"), changed=True))
    assert not queries.check(model, "large", "view", "L7", False, NOW).allowed
    assert queries.check(model, "large", "edit", "L7", False, NOW).allowed


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.none() | st.integers(0, 7), st.booleans())))
def test_the_tree_kept_event_by_event_equals_the_tree_worked_out_again(
    changes: list[tuple[int, int | None, bool]],
) -> None:
    log = EventLog().setup()
    log.location("L0")
    log.role("R0", ("view", "location_and_below"))
    log.create_key("k", ["L0"], ["R0"])
    model = model_of(log)
    queries.key_grants(model, "k")  # the tree is worked out here, then kept by the fold
    for location, parent, remove in changes:
        if remove:
            apply(model, log.org(ev.LocationRemoved, location_id=f"L{location}"))
        elif parent == location:
            node = model.organizations["org-1"].locations.get(f"L{location}")
            current = node.parent_id if node is not None else None
            renamed = log.org(
                ev.LocationRenamed, location_id=f"L{location}", name="y", parent_id=current
            )
            apply(model, renamed)
        else:
            apply(model, log.move(f"L{location}", None if parent is None else f"L{parent}"))
        org = model.organizations["org-1"]
        kept = {p: set(c) for p, c in model.trees["org-1"].items()}
        assert kept == {p: set(c) for p, c in g.tree(org).items()}
