"""A key's effective grants compiled into ready answers, so a check is a few dict lookups.

Per key: permission -> location -> Answer for the scoped grants, permission -> Answer for the
``everywhere`` ones (already merged into the scoped entries). An Answer holds the two finished
Decisions (items owned by the key or not) and is shared by every key and location with the same
reasons, so a million grants cost little more than their dict slots. Decisions are shared:
callers read them and never change their lists. Status and expiry are not compiled in: they
are judged at query time from the fields kept here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from contracts import events as ev
from contracts.queries import DenialReason, Reason
from services.projections.read_model import LocationNode, OrganizationView


class Decision(NamedTuple):
    allowed: bool
    reasons: list[Reason]
    denied_because: DenialReason | None


UNKNOWN_KEY = Decision(False, [], "unknown_key")
DELETED = Decision(False, [], "deleted")
MODULE_DISABLED = Decision(False, [], "api_module_disabled")
DISABLED = Decision(False, [], "disabled")
EXPIRED = Decision(False, [], "expired")
NOT_GRANTED = Decision(False, [], "not_granted")


class Answer(NamedTuple):
    others: Decision  # the item is not the key's own: own_items reasons do not count
    own: Decision


AnswerTable = dict[tuple[Reason, ...], Answer]


def answer_for(table: AnswerTable, reasons: tuple[Reason, ...]) -> Answer:
    """The shared answer for sorted, distinct reasons."""
    found = table.get(reasons)
    if found is None:
        others = [r for r in reasons if r.scope != "own_items"]
        found = Answer(
            Decision(True, others, None) if others else NOT_GRANTED,
            Decision(True, list(reasons), None),
        )
        table[reasons] = found
    return found


def _settle(table: AnswerTable, reasons: list[Reason]) -> Answer:
    if len(reasons) == 1:
        return answer_for(table, (reasons[0],))
    return answer_for(table, tuple(sorted(set(reasons))))


class OrgTree:
    """An organization's locations as a tree; each sub-tree worked out once per tree version
    and shared by every key with a grant there."""

    __slots__ = ("_below", "_children")

    def __init__(self, locations: dict[str, LocationNode]) -> None:
        children: dict[str | None, list[str]] = {}
        for location_id, node in locations.items():
            children.setdefault(node.parent_id, []).append(location_id)
        self._children = children
        self._below: dict[str, tuple[str, ...]] = {}

    def below(self, root: str) -> tuple[str, ...]:
        """The root and every location below it (a cycle cannot loop forever)."""
        found = self._below.get(root)
        if found is None:
            children = self._children
            seen, stack = {root: None}, [root]
            while stack:
                for child in children.get(stack.pop(), ()):
                    if child not in seen:
                        seen[child] = None
                        stack.append(child)
            found = self._below[root] = tuple(seen)
        return found


class KeyGrants:
    """One key's compiled grants and the status fields its checks need."""

    __slots__ = ("at", "deleted", "disabled", "everywhere", "expires", "org")

    def __init__(
        self,
        org: OrganizationView | None,
        state: ev.KeyState,
        at: dict[str, dict[str, Answer]],
        everywhere: dict[str, Answer],
    ) -> None:
        self.org = org
        self.deleted = state.deleted
        self.disabled = not state.enabled
        expires = state.expires_at
        self.expires = None if expires is None else aware(expires).astimezone(UTC)
        self.at = at
        self.everywhere = everywhere

    def answer(self, permission: str, location_id: str) -> Answer | None:
        by_location = self.at.get(permission)
        if by_location is not None:
            found = by_location.get(location_id)
            if found is not None:
                return found
        return self.everywhere.get(permission)

    def reasons(self, permission: str, location_id: str) -> list[Reason]:
        """Every reason, own items included, sorted (an existing location is assumed)."""
        found = self.answer(permission, location_id)
        return list(found.own.reasons) if found is not None else []


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def compile_grants(
    table: AnswerTable, tree: OrgTree | None, org: OrganizationView | None, state: ev.KeyState
) -> KeyGrants:
    if org is None or tree is None:
        return KeyGrants(org, state, {}, {})
    cells = {(c.role_id, c.location_id): c.applies for c in state.matrix}  # the last cell wins
    off = {cell for cell, applies in cells.items() if not applies}
    known = org.locations
    locations = [loc for loc in dict.fromkeys(state.location_ids) if loc in known]
    scoped: dict[str, dict[str, list[Reason]]] = {}
    everywhere: dict[str, list[Reason]] = {}
    for role_id in dict.fromkeys(state.role_ids):
        role = org.roles.get(role_id)
        if role is None:
            continue
        for location_id in locations:
            if off and (role_id, location_id) in off:
                continue
            for perm in role.permissions:
                scope = perm.scope
                reason = Reason(role_id, location_id, scope)
                if scope == "everywhere":
                    everywhere.setdefault(perm.permission, []).append(reason)
                    continue
                targets = (location_id,) if scope == "location_only" else tree.below(location_id)
                by_location = scoped.setdefault(perm.permission, {})
                for target in targets:
                    found = by_location.get(target)
                    if found is None:
                        by_location[target] = [reason]
                    else:
                        found.append(reason)
    at: dict[str, dict[str, Answer]] = {}
    for permission, by_location in scoped.items():
        extra = everywhere.get(permission)
        at[permission] = {
            target: _settle(table, reasons + extra if extra else reasons)
            for target, reasons in by_location.items()
        }
    return KeyGrants(
        org, state, at, {p: _settle(table, reasons) for p, reasons in everywhere.items()}
    )
