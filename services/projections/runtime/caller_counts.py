"""Who asked: answers counted by caller name and outcome (the HTTP status), for the metrics
to export. Bounded: past ``MAX_ENTRIES`` pairs, new pairs are counted under ``OTHER``."""

from __future__ import annotations

# the caller of an answer given before any caller was known (a 401)
UNKNOWN = "(unknown)"
OTHER = "(other)"
MAX_ENTRIES = 10_000


class CallerCounts:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.counts: dict[tuple[str, int], int] = {}

    def count(self, caller: str, status: int) -> None:
        key = (caller, status)
        counts = self.counts
        if key in counts:
            counts[key] += 1
        elif len(counts) < self.max_entries:
            counts[key] = 1
        else:
            other = (OTHER, status)
            counts[other] = counts.get(other, 0) + 1

    def snapshot(self) -> dict[tuple[str, int], int]:
        """A copy: (caller name, HTTP status) -> answers."""
        return dict(self.counts)


# the process's counts (one query service per process), read by the metrics
CALLER_COUNTS = CallerCounts()
