"""Checks are counted in plain integers and handed to the Prometheus metrics in bulk: once
flushed, the counters and the histogram hold what one update per check would have written."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from services.common import metrics

SECONDS = (0.0001, 0.0007, 0.003, 0.07, 0.3, 3.0, 30.0)


def bucket_counts(registry: CollectorRegistry, name: str) -> dict[str, float]:
    return {
        sample.labels["le"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == f"{name}_bucket"
    }


def test_flushed_checks_fill_the_buckets_observe_would_fill() -> None:
    metrics.PENDING_CHECKS.flush()  # what earlier tests of the session counted is theirs
    reference = CollectorRegistry()
    expected = Histogram("reference", "", buckets=metrics.LATENCY_BUCKETS, registry=reference)
    before = bucket_counts(REGISTRY, "apikeys_check_seconds")
    sum_before = REGISTRY.get_sample_value("apikeys_check_seconds_sum") or 0.0
    for seconds in SECONDS:
        expected.observe(seconds)
        metrics.count_check(time.perf_counter() - seconds, True, None)
    assert bucket_counts(REGISTRY, "apikeys_check_seconds") == before  # not yet handed over
    metrics.PENDING_CHECKS.flush()
    after = bucket_counts(REGISTRY, "apikeys_check_seconds")
    added = {le: after[le] - before.get(le, 0.0) for le in after}
    assert added == bucket_counts(reference, "reference")
    summed = (REGISTRY.get_sample_value("apikeys_check_seconds_sum") or 0.0) - sum_before
    assert summed == pytest.approx(sum(SECONDS), abs=0.01)


@pytest.mark.parametrize(
    ("allowed", "because", "outcome"),
    [(True, None, "allowed"), (False, None, "denied"), (False, "key_disabled", "key_disabled")],
)
def test_flushed_checks_are_counted_by_outcome(
    allowed: bool, because: str | None, outcome: str
) -> None:
    def counted() -> float:
        value = REGISTRY.get_sample_value("apikeys_checks_total", {"outcome": outcome})
        return value or 0.0

    metrics.PENDING_CHECKS.flush()  # what earlier tests of the session counted is theirs
    before = counted()
    for _ in range(3):
        metrics.count_check(time.perf_counter(), allowed, because)
    body = metrics.exposition()[0].decode()  # a scrape hands them over first
    assert counted() == before + 3
    assert f'apikeys_checks_total{{outcome="{outcome}"}} {before + 3}' in body
