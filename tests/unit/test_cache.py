"""The command path's aggregate cache: least recently used evicted first, a hit counts as a
use, pinned aggregates survive until the batch is saved."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from services.keys.cache import AggregateCache
from services.keys.domain import Cause, Organization


class Store:
    """A repository's ``get`` over a dict, counting loads."""

    def __init__(self, *names: str) -> None:
        orgs = [Organization.register(name, Cause("c")) for name in names]
        self.aggregates: dict[UUID, Aggregate] = {org.id: org for org in orgs}
        self.loads: list[UUID] = []

    def get(self, aggregate_id: UUID) -> Aggregate:
        self.loads.append(aggregate_id)
        try:
            return self.aggregates[aggregate_id]
        except KeyError:
            raise AggregateNotFoundError(aggregate_id) from None


def org_id(name: str) -> UUID:
    return Organization.create_id(name)


def test_a_hit_moves_the_aggregate_to_the_end_so_the_least_recently_used_goes() -> None:
    store = Store("a", "b", "c")
    cache = AggregateCache(store.get, capacity=2)
    cache.get(org_id("a"))
    cache.get(org_id("b"))
    cache.get(org_id("a"))  # a hit: "a" is now the most recently used
    cache.get(org_id("c"))  # over capacity: "b" goes, not "a"
    assert list(cache.items) == [org_id("a"), org_id("c")]
    store.loads.clear()
    assert cache.get(org_id("a")) is store.aggregates[org_id("a")]
    assert store.loads == []  # still cached
    cache.get(org_id("b"))
    assert store.loads == [org_id("b")]  # evicted, loaded again


def test_a_cached_lookup_counts_as_a_use_and_never_loads() -> None:
    store = Store("a", "b", "c")
    cache = AggregateCache(store.get, capacity=2)
    cache.get(org_id("a"))
    cache.get(org_id("b"))
    assert cache.cached(org_id("a")) is store.aggregates[org_id("a")]
    assert cache.cached(org_id("c")) is None
    cache.get(org_id("c"))
    assert list(cache.items) == [org_id("a"), org_id("c")]
    assert store.loads == [org_id("a"), org_id("b"), org_id("c")]


def test_an_unknown_aggregate_is_none_and_not_cached() -> None:
    cache = AggregateCache(Store().get, capacity=2)
    assert cache.get(org_id("nobody")) is None
    assert not cache.items


def test_pinned_aggregates_are_not_evicted_before_release_and_then_are_most_recent() -> None:
    store = Store("a", "b", "c")
    cache = AggregateCache(store.get, capacity=1)
    changed = cache.get(org_id("a"))
    cache.pin(changed)
    cache.get(org_id("b"))
    cache.get(org_id("c"))
    assert cache.get(org_id("a")) is changed  # pinned, though evicted from the items
    cache.release()
    assert list(cache.items) == [org_id("a")]
    assert not cache.pinned
