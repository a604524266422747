"""Audit answers from the event log: provenance, history, as-of answers, explanations, diffs.

The pure parts (``provenance``, ``history``) are re-exported here; ``queries`` answers them from
a store and ``cli`` prints them.
"""

from services.projections.audit.history import (
    changes,
    diff,
    history_entries,
    key_and_organization_events,
    permission_set,
)
from services.projections.audit.provenance import Provenance, Replay, explain, replay

__all__ = [
    "Provenance",
    "Replay",
    "changes",
    "diff",
    "explain",
    "history_entries",
    "key_and_organization_events",
    "permission_set",
    "replay",
]
