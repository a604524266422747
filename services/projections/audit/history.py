"""A key's history and permission diffs, pure: what each event changed, for a person, and the
permissions gained and lost between two moments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from contracts import audit as a
from contracts import events as ev
from services.projections.model.grants import aware
from services.projections.model.listing import effective_permissions
from services.projections.model.queries import key_status
from services.projections.model.state import ReadModel

_BASE_FIELDS = {f.name for f in msgspec.structs.fields(ev.Event)} | {"type"}  # the envelope
_HIDDEN = {"secret_sha256", "previous_secret_sha256"}


def changes(event: ev.KeyEvent, before: ev.KeyState | None) -> dict[str, Any]:
    """What an event changed, for a person: its own fields, then each key field that moved."""
    own = {
        name: value
        for name, value in msgspec.to_builtins(event).items()
        if name not in _BASE_FIELDS and name not in ("key", "key_id")
    }
    old = msgspec.to_builtins(before) if before is not None else {}
    new = msgspec.to_builtins(event.key)
    for name, value in new.items():
        if old.get(name) == value and before is not None:
            continue
        if name in _HIDDEN:
            shown = "none" if value is None else "changed" if before is not None else "set"
            own[name.removesuffix("_sha256")] = shown
        else:
            own[name] = {"from": old.get(name), "to": value} if before is not None else value
    return own


def history_entries(
    events: Iterable[ev.KeyEvent], before: ev.KeyState | None
) -> list[a.HistoryEntry]:
    entries = []
    for event in events:
        entries.append(
            a.HistoryEntry(
                position=event.position,
                type=type(event).__name__,
                occurred_at=event.occurred_at,
                actor_id=event.actor_id,
                command_id=event.command_id,
                changes=changes(event, before),
            )
        )
        before = event.key
    return entries


def permission_set(model: ReadModel, key_id: str, at: datetime) -> set[a.PermissionChange]:
    _, listing = effective_permissions(model, key_id, at)
    return {
        a.PermissionChange(permission=permission, location_id=location_id, scope=reason.scope)
        for location_id, by_permission in listing.items()
        for permission, reasons in by_permission.items()
        for reason in reasons
    }


def diff(
    key_id: str, earlier: ReadModel, t1: datetime, later: ReadModel, t2: datetime
) -> a.PermissionsDiff:
    before, after = permission_set(earlier, key_id, t1), permission_set(later, key_id, t2)
    return a.PermissionsDiff(
        key_id=key_id,
        from_moment=t1,
        to_moment=t2,
        from_status=key_status(earlier, key_id, t1),
        to_status=key_status(later, key_id, t2),
        gained=sorted(after - before),
        lost=sorted(before - after),
        from_position=earlier.position,
        to_position=later.position,
    )


def key_and_organization_events(
    events: Iterable[ev.AnyEvent], key_id: str, as_of: datetime | None = None
) -> list[ev.AnyEvent]:
    """What an as-of answer folds: the key's events and its organization's, up to ``as_of``.

    The pure twin of the event log query, for tests and in-memory callers.
    """
    listed = list(events)
    org_id = next((e.organization_id for e in listed if getattr(e, "key_id", None) == key_id), None)
    return [
        e
        for e in listed
        if e.organization_id == org_id
        and getattr(e, "key_id", key_id) == key_id
        and (as_of is None or aware(e.occurred_at) <= aware(as_of))
    ]
