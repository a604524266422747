"""A key's effective permissions, listed a page at a time.

The full listing grows with locations x permissions x reasons (a large key's is tens of
megabytes), so it is built in pages: (location, permission) entries in that order, a page
holding at most ``limit`` entries and ending early once its work (locations visited, ancestors
walked, permissions looked at, reasons gathered) passes a budget, so that one page stays well
within one turn of the event loop. A page may hold fewer entries than ``limit`` (even none)
while more follow: the listing goes on while ``next_cursor`` is set. Pure: the time is given.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from contracts.queries import KeyStatus, Reason
from services.projections.model.grants import KeyGrants, OrgIndex
from services.projections.model.queries import key_grants, key_status
from services.projections.model.state import ReadModel

PAGE_ENTRIES = 1_000  # entries on a page unless asked for fewer or more
MAX_PAGE_ENTRIES = 5_000
WORK_BUDGET = 5_000  # units of work a page may start on (see the module's docstring)

# where the next page starts: this location, its permissions after this one ("" = all of them)
Cursor = tuple[str, str]
Entry = tuple[str, str, list[Reason]]  # location, permission, reasons (sorted)


class Page(NamedTuple):
    status: KeyStatus
    entries: list[Entry]
    next_cursor: Cursor | None


class Source(Protocol):
    """Where a key's permissions come from: its compiled grants, or its cells (a large key)."""

    def locations(self) -> Sequence[str]:
        """Every location that may hold an entry, sorted."""
        ...

    def permissions(self, location_id: str) -> tuple[list[str], int]:
        """The permissions granted at the location, sorted, and the work it took."""
        ...

    def reasons(self, permission: str, location_id: str) -> list[Reason]: ...


def permissions_page(
    model: ReadModel,
    key_id: str,
    now: datetime,
    after: Cursor | None = None,
    limit: int | None = PAGE_ENTRIES,
    budget: int | None = WORK_BUDGET,
) -> Page:
    """One page of the key's permissions from ``after`` (the start when None); no limit and no
    budget give the whole listing."""
    status = key_status(model, key_id, now)
    if status != "active":
        return Page(status, [], None)
    grants = key_grants(model, key_id)
    index = model.org_indexes[model.keys[key_id].organization_id]  # made by key_grants
    source = _source(index, grants)
    entries: list[Entry] = []
    cap = limit if limit is not None else sys.maxsize
    spent, stop_at = 0, budget if budget is not None else sys.maxsize
    for location_id, listed, following in _from_cursor(source.locations(), after):
        names, work = source.permissions(location_id)
        spent += work + 1
        for permission in names:
            if permission <= listed:
                continue
            # a page always lists something, so that following the cursors ends
            if entries and (len(entries) >= cap or spent >= stop_at):
                return Page(status, entries, (location_id, listed))
            reasons = source.reasons(permission, location_id)
            spent += len(reasons)
            entries.append((location_id, permission, reasons))
            listed = permission
        if spent >= stop_at and following is not None:
            return Page(status, entries, (following, ""))
    return Page(status, entries, None)


def effective_permissions(
    model: ReadModel, key_id: str, now: datetime
) -> tuple[KeyStatus, dict[str, dict[str, list[Reason]]]]:
    """The key's status and, when active, its whole listing: location -> permission ->
    reasons (sorted). Unbounded: for the audit tools, never on an event loop."""
    page = permissions_page(model, key_id, now, None, None, None)
    found: dict[str, dict[str, list[Reason]]] = {}
    for location_id, permission, reasons in page.entries:
        found.setdefault(location_id, {})[permission] = reasons
    return page.status, found


def _from_cursor(
    locations: Sequence[str], after: Cursor | None
) -> Iterator[tuple[str, str, str | None]]:
    """(location, the last permission already listed there, the next location) from the cursor."""
    start, skip = 0, ""
    if after is not None:
        start = bisect_left(locations, after[0])
        if start < len(locations) and locations[start] == after[0]:
            skip = after[1]
    end = len(locations)
    for i in range(start, end):
        yield (
            locations[i],
            (skip if i == start else ""),
            (locations[i + 1] if i + 1 < end else None),
        )


class _Compiled:
    """A compiled key: its answers turned around, location -> permissions (at most the compile
    budget's worth), and the ``everywhere`` permissions that every location holds."""

    def __init__(self, index: OrgIndex, grants: KeyGrants) -> None:
        self.index, self.grants = index, grants
        self.everywhere = sorted(grants.everywhere)
        self.at: dict[str, list[str]] = {}
        for permission, by_location in grants.at.items():
            for location_id in by_location:
                self.at.setdefault(location_id, []).append(permission)

    def locations(self) -> Sequence[str]:
        if self.everywhere:
            return self.index.sorted_locations()
        known = self.index.org.locations
        return sorted(loc for loc in self.at if loc in known)

    def permissions(self, location_id: str) -> tuple[list[str], int]:
        here = self.at.get(location_id, ())
        if not here:
            return self.everywhere, 1
        names = sorted(set(self.everywhere).union(here))
        return names, len(names)

    def reasons(self, permission: str, location_id: str) -> list[Reason]:
        return self.grants.reasons(permission, location_id)


class _Direct:
    """A key too large to compile: each location's permissions from its ancestors' cells."""

    def __init__(self, index: OrgIndex, grants: KeyGrants) -> None:
        assert grants.direct is not None
        self.index, self.direct = index, grants.direct

    def locations(self) -> Sequence[str]:
        return self.index.sorted_locations()

    def permissions(self, location_id: str) -> tuple[list[str], int]:
        return self.direct.permissions_at(location_id)

    def reasons(self, permission: str, location_id: str) -> list[Reason]:
        return self.direct.reasons(permission, location_id)


def _source(index: OrgIndex, grants: KeyGrants) -> Source:
    return _Direct(index, grants) if grants.direct is not None else _Compiled(index, grants)
