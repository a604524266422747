"""Folding random contract events through the rules answers like a from-scratch reference."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.queries import Reason
from services.projections import model as rules
from tests.support.reference_world import (
    KEY_ORG,
    LOCATIONS,
    NOW,
    ORGS,
    PERMISSIONS,
    SETUP,
    World,
    operation,
    reference,
    to_event,
)


def assert_same_answers(model: rules.ReadModel, world: World) -> None:
    for key_id in (*KEY_ORG, "k-unknown"):
        listing: dict[str, dict[str, list[Reason]]] = {}
        for location in (*LOCATIONS, "zz"):
            for permission in PERMISSIONS:
                for own in (False, True):
                    expected = reference(world, key_id, permission, location, own)
                    got = rules.check(model, key_id, permission, location, own, NOW)
                    assert tuple(got) == expected, (key_id, permission, location, own)
                if expected[0]:
                    listing.setdefault(location, {})[permission] = expected[1]
        assert rules.effective_permissions(model, key_id, NOW)[1] == listing
    for org_id in ORGS:
        for location in LOCATIONS:
            holders = rules.keys_with_permission(model, org_id, "view", location, NOW)
            expected = [
                (key_id, reference(world, key_id, "view", location, True)[1])
                for key_id in sorted(k for k in world.keys if KEY_ORG[k] == org_id)
            ]
            assert holders == [(k, reasons) for k, reasons in expected if reasons]


def roundtrip(model: rules.ReadModel) -> rules.ReadModel:
    """What a store keeps and loads: organizations and keys as JSON, plus the position."""
    orgs = msgspec.json.decode(
        msgspec.json.encode(model.organizations), type=dict[str, rules.OrganizationView]
    )
    keys = msgspec.json.decode(msgspec.json.encode(model.keys), type=dict[str, rules.KeyView])
    return rules.restore(model.position, orgs, keys)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(operation, st.integers(1, 3)), min_size=5, max_size=40))
def test_folded_events_answer_like_the_reference(steps: list[tuple[Any, int]]) -> None:
    world, model, position = World(), rules.ReadModel(), 0
    for op, gap in [(op, 1) for op in SETUP] + steps:
        position += gap
        event = to_event(world, op, position)
        if event is not None:
            assert rules.apply(model, event) is not None
            assert rules.apply(model, event) is None  # a replayed event changes nothing
        assert_same_answers(model, world)
    assert_same_answers(roundtrip(model), world)
