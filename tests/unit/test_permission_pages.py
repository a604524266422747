"""A key's permissions are listed a page at a time: following ``next_cursor`` from the first
page gives exactly the whole listing, in order, each page within its limit, whether the key is
compiled or answered from its cells, and a page always lists something while more follow."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.projections.model.answers import decode_cursor, encode_cursor, permissions_answer
from services.projections.model.listing import effective_permissions, permissions_page
from services.projections.model.state import ReadModel
from tests.support.projection_builders import EventLog
from tests.unit.test_direct_grants import direct, model_of, worlds

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def paged(model: ReadModel, limit: int, budget: int) -> list[tuple[str, str, list[object]]]:
    entries: list[tuple[str, str, list[object]]] = []
    cursor = None
    for _ in range(10_000):
        page = permissions_page(model, "k", NOW, cursor, limit, budget)
        assert len(page.entries) <= limit
        entries.extend(page.entries)
        if page.next_cursor is None:
            return entries
        assert decode_cursor(encode_cursor(page.next_cursor)) == page.next_cursor
        assert page.entries or page.next_cursor != cursor  # every page moves on
        cursor = page.next_cursor
    raise AssertionError("the cursors never ended")


@settings(max_examples=200, deadline=None)
@given(worlds(), st.integers(1, 4), st.integers(1, 30), st.booleans())
def test_following_the_cursors_lists_everything_once_in_order(
    log: EventLog, limit: int, budget: int, answered_directly: bool
) -> None:
    model = model_of(log)
    if answered_directly:
        model.grant_cache["k"] = direct(model)
    whole = effective_permissions(model, "k", NOW)[1]
    expected = [(loc, p, r) for loc, by_p in whole.items() for p, r in by_p.items()]
    assert paged(model, limit, budget) == expected
    assert [(loc, p) for loc, p, _ in expected] == sorted((loc, p) for loc, p, _ in expected)


def wide_key() -> ReadModel:
    """Key ``k``: one role of two permissions at the root of 300 locations."""
    log = EventLog().setup()
    log.location("root")
    for i in range(300):
        log.location(f"L{i:03}", "root")
    log.role("R0", ("view", "location_and_below"), ("edit", "location_and_below"))
    log.create_key("k", ["root"], ["R0"])
    return model_of(log)


def test_a_large_listing_is_cut_into_pages_by_entries_and_by_work() -> None:
    model = wide_key()
    first = permissions_page(model, "k", NOW, None, 100, 10_000)
    assert len(first.entries) == 100 and first.next_cursor == ("L050", "")
    answer = permissions_answer(model, "k", NOW, None, 100, 10)  # the work budget ends it
    assert 0 < sum(len(loc.permissions) for loc in answer.locations) < 100
    assert answer.next_cursor is not None
    last = permissions_answer(model, "k", NOW, ("root", "edit"), 1_000)
    assert [loc.location_id for loc in last.locations] == ["root"]
    assert last.next_cursor is None


@pytest.mark.parametrize("text", ["", "no-space", " starts-with-space", "a\tb c", "x" * 201 + " p"])
def test_a_cursor_not_given_by_the_listing_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor(text)


def test_any_cursor_of_the_documented_form_is_a_position_in_the_listing() -> None:
    model = wide_key()
    whole = [(loc, p) for loc, p, _ in permissions_page(model, "k", NOW, None, 5_000).entries]
    cursor = decode_cursor("L149 f")  # between two entries: never given by a page
    rest = [(loc, p) for loc, p, _ in permissions_page(model, "k", NOW, cursor, 5_000).entries]
    assert rest == [entry for entry in whole if entry > ("L149", "f")]
    assert rest[0] == ("L149", "view")
