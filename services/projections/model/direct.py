"""Grants worked out per question, for a key too large to compile.

A compiled key holds an answer for every permission at every location below its cells, which
grows with cells x permissions x subtree: a key at the root of a large tree cannot be compiled
within one turn of the event loop. Such a key is answered from its cells instead: the reasons
for (permission, location) come from the location's ancestors (``location_and_below`` and
``own_items`` cells above it, a ``location_only`` cell at it) and the key's ``everywhere``
cells. Each answer is the same shared Answer a compiled key would give, and is remembered
(a bounded memo) until an event drops the key's grants.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from contracts import events as ev
from contracts.queries import Reason
from services.projections.model.decisions import Answer, AnswerTable, settle
from services.projections.model.values import OrganizationView

BELOW = frozenset(("location_and_below", "own_items"))
MEMO_LIMIT = 10_000  # remembered answers per key (emptied when reached)


class Sized(Protocol):
    """What the cost of compiling needs of an organization's index."""

    org: OrganizationView

    def size_up_to(self, root: str, limit: int) -> int: ...


_NOTHING = Answer(*settle({}, [Reason("", "", "everywhere")]))  # a marker, never returned


def switched_off(state: ev.KeyState) -> set[tuple[str, str]]:
    """The (role, location) cells the key's matrix turns off: the last cell for a pair wins."""
    off: set[tuple[str, str]] = set()
    for c in state.matrix:
        if not c.applies:
            off.add((c.role_id, c.location_id))
        elif off:
            off.discard((c.role_id, c.location_id))
    return off


class DirectGrants:
    __slots__ = (
        "_everywhere",
        "_everywhere_held",
        "_memo",
        "below_names",
        "cells",
        "everywhere_at",
        "everywhere_names",
        "only_names",
        "org",
        "scopes",
        "table",
    )

    def __init__(self, org: OrganizationView, table: AnswerTable, state: ev.KeyState) -> None:
        self.org, self.table = org, table
        off = switched_off(state)
        roles = [r for r in dict.fromkeys(state.role_ids) if r in org.roles]
        # role -> permission -> the scopes the role grants it with; per role, the permissions
        # it grants below its cells, and at them only
        self.scopes: dict[str, dict[str, list[str]]] = {}
        self.below_names: dict[str, set[str]] = {}
        self.only_names: dict[str, set[str]] = {}
        anywhere: dict[str, set[str]] = {}
        for role_id in roles:
            by_permission = self.scopes[role_id] = {}
            below, only, everywhere = set(), set(), set()
            for perm in org.roles[role_id].permissions:
                name, scope = perm.permission, perm.scope
                by_permission.setdefault(name, []).append(scope)
                if scope == "location_only":
                    only.add(name)
                elif scope == "everywhere":
                    everywhere.add(name)
                else:
                    below.add(name)
            self.below_names[role_id], self.only_names[role_id] = below, only
            if everywhere:
                anywhere[role_id] = everywhere
        # key location -> the roles whose cell there is on
        self.cells: dict[str, list[str]] = {
            loc: [r for r in roles if (r, loc) not in off]
            for loc in dict.fromkeys(state.location_ids)
            if loc in org.locations
        }
        # per role granting something everywhere, the key locations where its cell is on
        self.everywhere_at: dict[str, list[str]] = {}
        names: set[str] = set()
        for role_id, granted in anywhere.items():
            at = [loc for loc, on in self.cells.items() if role_id in on]
            if at:
                self.everywhere_at[role_id] = at
                names.update(granted)
        self.everywhere_names = frozenset(names)
        self._everywhere: dict[str, list[Reason]] = {}
        self._everywhere_held = 0  # reasons remembered in ``_everywhere``
        self._memo: dict[tuple[str, str], Answer] = {}

    def parts(self) -> tuple[object, ...]:
        """What the grants hold, to be freed a part at a time."""
        return (
            self.scopes,
            self.below_names,
            self.only_names,
            self.cells,
            self.everywhere_at,
            self._everywhere,
            self._memo,
        )

    def answer(self, permission: str, location_id: str) -> Answer | None:
        """The answer for the permission at an existing location; None when nothing grants it."""
        memo = self._memo
        found = memo.get((permission, location_id))
        if found is None:
            reasons = self._reasons(permission, location_id)
            found = settle(self.table, reasons) if reasons else _NOTHING
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[(permission, location_id)] = found
        return None if found is _NOTHING else found

    def reasons(self, permission: str, location_id: str) -> list[Reason]:
        """Every reason for the permission at the location, own items included, sorted."""
        return sorted(set(self._reasons(permission, location_id)))

    def permissions_at(self, location_id: str) -> tuple[list[str], int]:
        """The permissions granted at an existing location, sorted, and the work it took
        (cells looked at and names gathered)."""
        names = set(self.everywhere_names)
        work = 1
        cells, below, only = self.cells, self.below_names, self.only_names
        for ancestor in self._ancestors(location_id):
            work += 1
            for role_id in cells.get(ancestor, ()):
                names.update(below[role_id])
                if ancestor == location_id:
                    names.update(only[role_id])
                work += 1
        return sorted(names), work + len(names) // 10

    def _reasons(self, permission: str, location_id: str) -> list[Reason]:
        if location_id not in self.org.locations:
            return []
        reasons = list(self._everywhere_reasons(permission))
        cells, scopes = self.cells, self.scopes
        for ancestor in self._ancestors(location_id):
            for role_id in cells.get(ancestor, ()):
                for scope in scopes[role_id].get(permission, ()):
                    if scope in BELOW or (scope == "location_only" and ancestor == location_id):
                        reasons.append(Reason(role_id, ancestor, scope))  # type: ignore[arg-type]
        return reasons

    def _everywhere_reasons(self, permission: str) -> list[Reason]:
        if permission not in self.everywhere_names:
            return []
        found = self._everywhere.get(permission)
        if found is None:
            scopes = self.scopes
            found = [
                Reason(role_id, location_id, "everywhere")
                for role_id, at in self.everywhere_at.items()
                if "everywhere" in scopes[role_id].get(permission, ())
                for location_id in at
            ]
            if self._everywhere_held > MEMO_LIMIT * 10:
                self._everywhere.clear()
                self._everywhere_held = 0
            self._everywhere[permission] = found
            self._everywhere_held += len(found)
        return found

    def _ancestors(self, location_id: str) -> Iterator[str]:
        """The location and every location above it (a cycle cannot loop forever)."""
        locations, seen = self.org.locations, set()
        current: str | None = location_id
        while current is not None and current not in seen:
            seen.add(current)
            yield current
            node = locations.get(current)
            current = node.parent_id if node is not None else None


def compile_cost(index: Sized, state: ev.KeyState, budget: int) -> int:
    """How many answers compiling the key would work out (each held cell's grant block),
    counted only until it passes ``budget``, so the count itself stays within the budget."""
    org, off = index.org, switched_off(state)
    locations = [loc for loc in dict.fromkeys(state.location_ids) if loc in org.locations]
    cost = 0
    for role_id in dict.fromkeys(state.role_ids):
        role = org.roles.get(role_id)
        if role is None:
            continue
        below = sum(1 for p in role.permissions if p.scope in BELOW)
        flat = len(role.permissions) - below
        for location_id in locations:
            if (role_id, location_id) in off:
                continue
            cost += 1 + flat
            if below:
                cost += below * index.size_up_to(location_id, (budget - cost) // below + 1)
            if cost > budget:
                return cost
    return cost
