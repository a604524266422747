"""The Prometheus metrics of both services (``GET /metrics``), in one registry per process.

Counters and histograms are updated where the work happens; gauges that mirror state kept
elsewhere (lags, positions) are set just before each scrape by the service's ``refresh``.
No label ever holds a token, a hash or an id chosen by a client (only types, statuses, codes).

Several HTTP workers of the projection service (``APIKEYS_HTTP_WORKERS``) share their metrics
through prometheus-client's multiprocess mode: their parent gives each the same
``PROMETHEUS_MULTIPROC_DIR`` (read when prometheus-client is imported), every scrape sums the
counters and histograms of all workers, and the gauges say how each is aggregated.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

commands = Counter("apikeys_commands", "Commands answered, by type and status", ["type", "status"])
dead_letters = Counter("apikeys_dead_letters", "Entries dead-lettered, by reason", ["reason"])
batch_size = Histogram("apikeys_batch_size", "Entries per handled batch", buckets=BATCH_BUCKETS)
batch_seconds = Histogram(
    "apikeys_batch_seconds", "Time to handle a batch (store and answer)", buckets=LATENCY_BUCKETS
)
relay_lag = Gauge("apikeys_relay_lag_positions", "Stored position minus published position")
relay_lag_seconds = Gauge("apikeys_relay_lag_seconds", "Age of the oldest unpublished event")
# with several workers: the worst of the live ones (the most behind, the lowest position)
projection_lag = Gauge(
    "apikeys_projection_lag_seconds",
    "Age of the oldest stored event the projection lacks",
    multiprocess_mode="livemax",
)
projection_position = Gauge(
    "apikeys_projection_position",
    "Position the read model reflects",
    multiprocess_mode="livemin",
)
projection_worker_persists = Gauge(
    "apikeys_projection_worker_persists",
    "1 for the process that writes the view store, 0 for a memory-only HTTP worker "
    "(one series per worker pid with APIKEYS_HTTP_WORKERS above 1)",
    multiprocess_mode="liveall",
)
checks = Counter("apikeys_checks", "Checks answered, by outcome", ["outcome"])
check_seconds = Histogram(
    "apikeys_check_seconds", "Time to decide a check", buckets=LATENCY_BUCKETS
)
verifies = Counter("apikeys_verifies", "Verifications answered, by code", ["code"])
verify_seconds = Histogram(
    "apikeys_verify_seconds", "Time to answer a verification", buckets=LATENCY_BUCKETS
)
reconnects = Counter(
    "apikeys_reconnects", "Outages of a dependency that ended (a reconnect)", ["dependency"]
)


MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def _all_processes() -> CollectorRegistry | None:
    """The registry that reads every worker's values (None: this process's own only)."""
    if not os.environ.get(MULTIPROCESS_DIR):
        return None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


_ALL_PROCESSES = _all_processes()


def exposition() -> tuple[bytes, str]:
    """The body and content type of ``GET /metrics``: every worker's, when there are several."""
    PENDING_CHECKS.flush()
    if _ALL_PROCESSES is not None:
        return generate_latest(_ALL_PROCESSES), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def process_ended(pid: int, directory: str) -> None:
    """Drop the gauges of a worker that ended (its counts stay in the sums); called by the
    parent of the workers that share ``directory``."""
    multiprocess.mark_process_dead(pid, directory)


class PendingChecks:
    """Checks counted in plain integers and handed to ``checks`` and ``check_seconds`` in bulk
    (``flush``, before every scrape and every second in an HTTP worker): an update of a
    Prometheus value takes a lock, and in multiprocess mode a write to a shared file, which
    would cost every check several microseconds."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}
        # per bucket of check_seconds, in its order (the last one is +Inf)
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.seconds = 0.0

    def count(self, started: float, allowed: bool, denied_because: str | None) -> None:
        elapsed = time.perf_counter() - started
        outcome = "allowed" if allowed else (denied_because or "denied")
        outcomes = self.outcomes
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        # the first bucket whose bound is at or above the time, as Histogram.observe picks
        self.buckets[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        self.seconds += elapsed

    def flush(self) -> None:
        if not self.outcomes:
            return
        for outcome, count in self.outcomes.items():
            checks.labels(outcome).inc(count)
        # Histogram has no public call for many observations at once: its values are
        # updated as observe() updates them (pinned by tests/unit/test_metrics.py)
        for value, count in zip(check_seconds._buckets, self.buckets, strict=True):
            if count:
                value.inc(count)
        check_seconds._sum.inc(self.seconds)
        self.outcomes, self.buckets, self.seconds = {}, [0] * len(self.buckets), 0.0


PENDING_CHECKS = PendingChecks()


def count_check(started: float, allowed: bool, denied_because: str | None) -> None:
    """One check decided since ``started`` (a ``time.perf_counter()``)."""
    PENDING_CHECKS.count(started, allowed, denied_because)
