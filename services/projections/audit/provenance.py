"""Replays and explanations, pure: which event established each link of a granting chain.

A replay folds contract events through the same rules that serve live queries, so an as-of
answer is the live answer the service gave (or would have given) at that moment. Provenance is
tracked here, off the live hot path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from contracts import audit as a
from contracts import events as ev
from contracts.common import Permission
from contracts.queries import Reason
from services.projections.model.fold import apply
from services.projections.model.state import ReadModel


@dataclass
class Provenance:
    """For each link of a granting chain, the position of the event that established it."""

    role_permissions: dict[tuple[str, str], dict[Permission, int]] = field(default_factory=dict)
    location_links: dict[tuple[str, str], tuple[str | None, int]] = field(default_factory=dict)
    key_locations: dict[tuple[str, str], int] = field(default_factory=dict)
    key_roles: dict[tuple[str, str], int] = field(default_factory=dict)
    cells: dict[tuple[str, str, str], tuple[bool, int]] = field(default_factory=dict)

    def observe(self, event: ev.AnyEvent) -> None:
        org_id, position = event.organization_id, event.position
        match event:
            case ev.KeyEvent():
                self._observe_key(event)
            case ev.RoleDefined() | ev.RolePermissionsChanged() | ev.RoleRenamed():
                before = self.role_permissions.get((org_id, event.role_id), {})
                self.role_permissions[(org_id, event.role_id)] = {
                    p: before.get(p, position) for p in event.permissions
                }
            case ev.RoleRemoved():
                self.role_permissions.pop((org_id, event.role_id), None)
            case ev.LocationDefined() | ev.LocationMoved() | ev.LocationRenamed():
                link = self.location_links.get((org_id, event.location_id))
                if link is None or link[0] != event.parent_id:
                    self.location_links[(org_id, event.location_id)] = (event.parent_id, position)
            case ev.LocationRemoved():
                self.location_links.pop((org_id, event.location_id), None)

    def _observe_key(self, event: ev.KeyEvent) -> None:
        key_id, state, position = event.key_id, event.key, event.position
        _track(self.key_locations, key_id, state.location_ids, position)
        _track(self.key_roles, key_id, state.role_ids, position)
        current = {(key_id, c.role_id, c.location_id): c.applies for c in state.matrix}
        for cell_key in [k for k in self.cells if k[0] == key_id and k not in current]:
            del self.cells[cell_key]
        if isinstance(event, ev.RoleLocationToggled):
            # only a toggle sets a cell; every other cell is on by default since its role or
            # location joined the key
            self.cells[(key_id, event.role_id, event.location_id)] = (event.applies, position)


def _track(table: dict[tuple[str, str], int], key_id: str, ids: list[str], position: int) -> None:
    """Keep the position where each id joined the key; an id that left is forgotten."""
    for stale in [k for k in table if k[0] == key_id and k[1] not in ids]:
        del table[stale]
    for item in ids:
        table.setdefault((key_id, item), position)


@dataclass
class Replay:
    model: ReadModel
    provenance: Provenance


def replay(events: Iterable[ev.AnyEvent]) -> Replay:
    """Fold events (in position order) into a read model and their provenance."""
    model, provenance = ReadModel(), Provenance()
    for event in events:
        if apply(model, event) is not None:
            provenance.observe(event)
    return Replay(model, provenance)


def explain(
    done: Replay, key_id: str, permission: str, location_id: str, reasons: Iterable[Reason]
) -> list[a.ReasonExplanation]:
    """The chain behind each granting reason, with the positions that established its links."""
    view = done.model.keys.get(key_id)
    if view is None:
        return []
    org_id, prov = view.organization_id, done.provenance
    chains = []
    for reason in reasons:
        role_perms = prov.role_permissions.get((org_id, reason.role_id), {})
        cell = prov.cells.get((key_id, reason.role_id, reason.location_id))
        key_role = prov.key_roles.get((key_id, reason.role_id))
        key_location = prov.key_locations.get((key_id, reason.location_id))
        default_cell = max((p for p in (key_role, key_location) if p is not None), default=None)
        below = reason.scope in ("location_and_below", "own_items")
        chains.append(
            a.ReasonExplanation(
                role_id=reason.role_id,
                location_id=reason.location_id,
                scope=reason.scope,
                permission=permission,
                role_permission_position=role_perms.get(Permission(permission, reason.scope)),
                key_role_position=key_role,
                key_location_position=key_location,
                cell_position=cell[1] if cell is not None else default_cell,
                cell_set_by="toggle" if cell is not None else "default",
                path=_path(prov, org_id, reason.location_id, location_id) if below else [],
            )
        )
    return chains


def _path(prov: Provenance, org_id: str, top: str, bottom: str) -> list[a.LocationLink]:
    """The links from ``top`` down to ``bottom`` in the tree (empty when they are one place)."""
    links: list[a.LocationLink] = []
    current, seen = bottom, {bottom}
    while current != top:
        parent, position = prov.location_links.get((org_id, current), (None, None))
        if parent is None or parent in seen:
            return []
        links.append(a.LocationLink(location_id=current, parent_id=parent, position=position))
        seen.add(parent)
        current = parent
    return list(reversed(links))
