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

from contracts import events as ev
from contracts.queries import Reason
from services.projections.model.decisions import (
    DELETED,
    DISABLED,
    EXPIRED,
    MODULE_DISABLED,
    Answer,
    AnswerTable,
    Decision,
    answer_for,
    settle,
)
from services.projections.model.direct import DirectGrants, compile_cost, switched_off
from services.projections.model.values import OrganizationView, RoleDefinition

# parent -> its children, in the order they were placed (an ordered set); kept up to date by
# the fold (see ``tree``), so that a change to a large tree costs no rebuild of it
Children = dict[str | None, dict[str, None]]
Block = tuple[dict[str, dict[str, Answer]], dict[str, Answer]]  # scoped, everywhere
# the most answers a key's compiled grants may hold; a larger key is answered directly
# (see ``direct``), so compiling one key stays well within one turn of the event loop
COMPILE_BUDGET = 2_000


def tree(org: OrganizationView) -> Children:
    """The organization's location tree, parent -> children, worked out from scratch."""
    children: Children = {}
    for location_id, node in org.locations.items():
        children.setdefault(node.parent_id, {})[location_id] = None
    return children


class OrgIndex:
    """An organization's location tree and what each (role, location) cell grants, worked out
    once per tree and role version and shared by every key holding that cell."""

    __slots__ = (
        "_below",
        "_blocks",
        "_children",
        "_combined",
        "_names",
        "_sorted",
        "org",
        "table",
    )

    def __init__(self, org: OrganizationView, table: AnswerTable, children: Children) -> None:
        self.org, self.table = org, table
        self._children = children
        self._below: dict[str, tuple[str, ...]] = {}
        self._blocks: dict[str, dict[str, Block]] = {}  # role -> location -> block
        self._combined: dict[tuple[int, int], Answer] = {}
        self._names: dict[str, frozenset[str]] = {}
        self._sorted: list[str] | None = None

    def sorted_locations(self) -> list[str]:
        """Every location id, sorted (the order a key's permissions are listed in)."""
        if self._sorted is None:
            self._sorted = sorted(self.org.locations)
        return self._sorted

    def size_up_to(self, root: str, limit: int) -> int:
        """How many locations ``below`` gives, counted only up to about ``limit``."""
        found = self._below.get(root)
        if found is not None:
            return len(found)
        children, seen, stack = self._children, {root}, [root]
        while stack and len(seen) <= limit:
            for child in children.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return len(seen)

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

    def parts(self) -> tuple[object, ...]:
        """What the index holds, to be freed a part at a time."""
        return (self._blocks, self._below, self._combined, self._names)

    def role_changed(self, role_id: str) -> dict[str, Block] | None:
        """Forget the role's grant blocks; they are given back (to be freed)."""
        self._names.pop(role_id, None)
        return self._blocks.pop(role_id, None)

    def names(self, role_id: str, role: RoleDefinition) -> frozenset[str]:
        found = self._names.get(role_id)
        if found is None:
            found = self._names[role_id] = frozenset(p.permission for p in role.permissions)
        return found

    def block(self, role_id: str, location_id: str, role: RoleDefinition) -> Block:
        by_location = self._blocks.get(role_id)
        if by_location is None:
            by_location = self._blocks[role_id] = {}
        found = by_location.get(location_id)
        if found is None:
            found = by_location[location_id] = self._grant_block(role_id, location_id, role)
        return found

    def _grant_block(self, role_id: str, location_id: str, role: RoleDefinition) -> Block:
        scoped: dict[str, dict[str, list[Reason]]] = {}
        everywhere: dict[str, list[Reason]] = {}
        for perm in role.permissions:
            scope = perm.scope
            reason = Reason(role_id, location_id, scope)
            if scope == "everywhere":
                everywhere.setdefault(perm.permission, []).append(reason)
                continue
            targets = (location_id,) if scope == "location_only" else self.below(location_id)
            by_location = scoped.setdefault(perm.permission, {})
            for target in targets:
                by_location.setdefault(target, []).append(reason)
        table = self.table
        return (
            {
                p: {t: settle(table, reasons) for t, reasons in at.items()}
                for p, at in scoped.items()
            },
            {p: settle(table, reasons) for p, reasons in everywhere.items()},
        )

    def combine(self, first: Answer, second: Answer) -> Answer:
        """The answer holding both answers' reasons (answers live as long as the table)."""
        pair = (id(first), id(second))
        found = self._combined.get(pair)
        if found is None:
            merged = set(first.own.reasons)
            merged.update(second.own.reasons)
            found = self._combined[pair] = answer_for(self.table, tuple(sorted(merged)))
        return found

    def merge(self, maps: list[dict[str, Answer]]) -> dict[str, Answer]:
        """location -> answer over several blocks; a lone block's map is shared, not copied."""
        merged = maps[0]
        if len(maps) == 1:
            return merged
        merged = dict(merged)
        for other in maps[1:]:
            clash = merged.keys() & other.keys()
            if clash:
                before = {t: merged[t] for t in clash}
                merged.update(other)
                for t in clash:
                    merged[t] = self.combine(before[t], other[t])
            else:
                merged.update(other)
        return merged


class KeyGrants(dict[str, "dict[str, Answer] | Answer"]):
    """One key's compiled grants and the status fields its checks need.

    A dict itself, permission -> location -> answer, or permission -> answer when the key holds
    the permission only ``everywhere``: a check over many keys waits mostly on memory, so it
    finds the key's grants in one object and a permission the key lacks in one lookup.
    ``everywhere`` keeps every ``everywhere`` answer, for locations the scoped map lacks.
    """

    __slots__ = ("deleted", "direct", "disabled", "everywhere", "expires", "org", "plain")

    def __init__(
        self,
        org: OrganizationView | None,
        state: ev.KeyState,
        at: dict[str, dict[str, Answer]],
        everywhere: dict[str, Answer],
        direct: DirectGrants | None = None,
    ) -> None:
        super().__init__(everywhere)
        self.update(at)
        self.org = org
        self.deleted = state.deleted
        self.disabled = not state.enabled
        expires = state.expires_at
        self.expires = None if expires is None else aware(expires).astimezone(UTC)
        # nothing but the organization's API module can deny: the one test on a check's path
        self.plain = (
            org is not None
            and not self.deleted
            and not self.disabled
            and expires is None
            and direct is None
        )
        self.everywhere = everywhere
        self.direct = direct  # a key too large to compile: every answer worked out when asked

    def parts(self) -> tuple[object, ...]:
        """What the grants hold besides their entries, to be freed a part at a time."""
        return (self.everywhere,) if self.direct is None else (self.everywhere, self.direct)

    @property
    def at(self) -> dict[str, dict[str, Answer]]:
        """permission -> location -> answer, for the permissions granted at locations."""
        return {p: m for p, m in self.items() if type(m) is dict}

    def answer(self, permission: str, location_id: str) -> Answer | None:
        if self.direct is not None:
            return self.direct.answer(permission, location_id)
        by_location = self.get(permission)
        if type(by_location) is dict:
            found = by_location.get(location_id)
            if found is not None:
                return found
        return self.everywhere.get(permission)

    def reasons(self, permission: str, location_id: str) -> list[Reason]:
        """Every reason, own items included, sorted (an existing location is assumed)."""
        found = self.answer(permission, location_id)
        return list(found.own.reasons) if found is not None else []


def status_denial(grants: KeyGrants, now: datetime) -> Decision | None:
    """The denial for a key that is not active (in the order statuses are judged), else None."""
    if grants.deleted:
        return DELETED
    if grants.org is None or not grants.org.api_module_enabled:
        return MODULE_DISABLED
    if grants.disabled:
        return DISABLED
    if grants.expires is not None and grants.expires <= aware(now):
        return EXPIRED
    return None


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def compile_grants(index: OrgIndex | None, state: ev.KeyState) -> KeyGrants:
    if index is None:
        return KeyGrants(None, state, {}, {})
    if compile_cost(index, state, COMPILE_BUDGET) > COMPILE_BUDGET:
        return KeyGrants(index.org, state, {}, {}, DirectGrants(index.org, index.table, state))
    at, everywhere = _collect(index, state, None)
    return KeyGrants(index.org, state, at, everywhere)


def refresh(index: OrgIndex, grants: KeyGrants, state: ev.KeyState, names: set[str]) -> KeyGrants:
    """The key's grants with only the named permissions compiled again (a role's permissions
    changed); new grants, so a check in another thread sees the old ones or the new."""
    at, everywhere = _collect(index, state, names)
    return KeyGrants(
        grants.org,
        state,
        {p: m for p, m in grants.at.items() if p not in names} | at,
        {p: a for p, a in grants.everywhere.items() if p not in names} | everywhere,
    )


def _collect(
    index: OrgIndex, state: ev.KeyState, names: set[str] | None
) -> tuple[dict[str, dict[str, Answer]], dict[str, Answer]]:
    """permission -> location -> answer, and permission -> answer for ``everywhere`` grants
    (only the named permissions, when names are given)."""
    scoped, everywhere = _held_blocks(index, state, names)
    return _merged(index, scoped, everywhere)


def _held_blocks(
    index: OrgIndex, state: ev.KeyState, names: set[str] | None
) -> tuple[dict[str, list[dict[str, Answer]]], dict[str, list[Answer]]]:
    """Per permission, the grant blocks of every (role, location) cell the key holds."""
    org = index.org
    off = switched_off(state)
    known = org.locations
    locations = [loc for loc in dict.fromkeys(state.location_ids) if loc in known]
    scoped: dict[str, list[dict[str, Answer]]] = {}
    everywhere: dict[str, list[Answer]] = {}
    for role_id in dict.fromkeys(state.role_ids):
        role = org.roles.get(role_id)
        if role is None or (names is not None and names.isdisjoint(index.names(role_id, role))):
            continue
        for location_id in locations:
            if off and (role_id, location_id) in off:
                continue
            at, anywhere = index.block(role_id, location_id, role)
            for permission, by_location in at.items():
                if names is None or permission in names:
                    scoped.setdefault(permission, []).append(by_location)
            for permission, answer in anywhere.items():
                if names is None or permission in names:
                    everywhere.setdefault(permission, []).append(answer)
    return scoped, everywhere


def _merged(
    index: OrgIndex,
    scoped: dict[str, list[dict[str, Answer]]],
    everywhere: dict[str, list[Answer]],
) -> tuple[dict[str, dict[str, Answer]], dict[str, Answer]]:
    """One answer per permission and location; ``everywhere`` answers folded into each."""
    every: dict[str, Answer] = {}
    for permission, answers in everywhere.items():
        found = answers[0]
        for answer in answers[1:]:
            found = index.combine(found, answer)
        every[permission] = found
    at_all: dict[str, dict[str, Answer]] = {}
    for permission, maps in scoped.items():
        merged = index.merge(maps)
        extra = every.get(permission)
        if extra is not None:
            merged = {t: index.combine(a, extra) for t, a in merged.items()}
        at_all[permission] = merged
    return at_all, every
