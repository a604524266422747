"""A model that grows while it runs is frozen out of the collector's full passes each time it
has gained ``growth`` keys (``gc_policy.GrowthFreeze``); frozen keys are still freed by
reference counting when the model drops them."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.projections.model import gc_policy
from services.projections.model.state import ReadModel
from services.projections.runtime.live import LiveReadModel


class Held:
    """A key's stand-in that can be watched with a weak reference."""


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test run keeps its usual collector


def grow(model: ReadModel, count: int) -> None:
    start = len(model.keys)
    for i in range(start, start + count):
        model.keys[f"k{i}"] = Held()  # type: ignore[assignment]


def test_freezes_once_the_model_gained_growth_keys_and_not_before() -> None:
    model, freeze = ReadModel(), gc_policy.GrowthFreeze(growth=100)
    assert freeze.check(model) is False  # the first look sets the baseline
    grow(model, 99)
    assert freeze.check(model) is False
    assert freeze.freezes == 0
    grow(model, 1)
    before = gc.get_freeze_count()
    assert freeze.check(model) is True
    assert freeze.freezes == 1
    assert gc.get_freeze_count() > before  # the new keys are out of the collector's passes
    assert all(key not in gc.get_objects(2) for key in list(model.keys.values())[:3])
    grow(model, 99)
    assert freeze.check(model) is False
    grow(model, 1)
    assert freeze.check(model) is True
    assert freeze.freezes == 2


def test_a_frozen_key_is_still_freed_when_the_model_drops_it() -> None:
    model, freeze = ReadModel(), gc_policy.GrowthFreeze(growth=10)
    freeze.check(model)
    grow(model, 10)
    watched = weakref.ref(model.keys["k3"])
    assert freeze.check(model) is True
    del model.keys["k3"]
    assert watched() is None  # reference counting frees it at once, frozen or not


def test_a_smaller_model_restarts_the_count() -> None:
    model, freeze = ReadModel(), gc_policy.GrowthFreeze(growth=10)
    grow(model, 50)
    freeze.check(model)
    model.keys.clear()
    assert freeze.check(model) is False  # replaced by a smaller model: a new baseline
    grow(model, 9)
    assert freeze.check(model) is False
    grow(model, 1)
    assert freeze.check(model) is True


async def test_the_live_model_freezes_as_it_advances() -> None:
    live = LiveReadModel(ReadModel())
    live.growth_freeze = gc_policy.GrowthFreeze(growth=5)
    live.advanced()
    grow(live.model, 5)
    live.advanced()
    assert live.growth_freeze.freezes == 1
