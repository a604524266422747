"""Builds contract events for the projection tests, with increasing positions (gaps included)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from contracts import events as ev
from contracts.codec import json_encoder
from contracts.common import MatrixCell, Permission
from contracts.streams import DATA_FIELD, position_to_entry_id
from contracts.tokens import token_sha256

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def key_state(**changes: Any) -> ev.KeyState:
    values: dict[str, Any] = {
        "name": "key",
        "location_ids": [],
        "role_ids": [],
        "matrix": [],
        "enabled": True,
        "deleted": False,
        "expires_at": None,
        "secret_sha256": token_sha256("apk_default"),
        "secret_hint": "apk_...ault",
    }
    values.update(changes)
    return ev.KeyState(**values)


class EventLog:
    """One organization's events; each call appends one event and returns it.

    ``chained``: each event names the one before it (``previous_position``, ``start`` for the
    first), as the relay publishes them; otherwise it is None (published before the field).
    """

    def __init__(
        self,
        organization_id: str = "org-1",
        *,
        start: int = 0,
        step: int = 1,
        chained: bool = False,
    ) -> None:
        self.organization_id = organization_id
        self.position = start
        self.step = step
        self.chained = chained
        self.events: list[ev.AnyEvent] = []
        self.keys: dict[str, ev.KeyState] = {}

    def _next(self, cls: type[Any], **fields: Any) -> Any:
        previous = self.position if self.chained else None
        self.position += self.step
        event = cls(
            position=self.position,
            previous_position=previous,
            organization_id=self.organization_id,
            occurred_at=T0,
            **fields,
        )
        self.events.append(event)
        return event

    def org(self, cls: type[Any], **fields: Any) -> Any:
        return self._next(cls, **fields)

    def setup(self) -> EventLog:
        self.org(ev.OrganizationRegistered)
        self.org(ev.ApiModuleEnabled)
        return self

    def location(
        self, location_id: str, parent_id: str | None = None, name: str | None = None
    ) -> Any:
        return self.org(
            ev.LocationDefined,
            location_id=location_id,
            name=name or location_id,
            parent_id=parent_id,
        )

    def move(self, location_id: str, parent_id: str | None) -> Any:
        return self.org(
            ev.LocationMoved, location_id=location_id, name=location_id, parent_id=parent_id
        )

    def role(self, role_id: str, *perms: tuple[str, str], changed: bool = False) -> Any:
        cls = ev.RolePermissionsChanged if changed else ev.RoleDefined
        permissions = [Permission(p, s) for p, s in perms]  # type: ignore[arg-type]
        return self.org(cls, role_id=role_id, name=role_id, permissions=permissions)

    def key(
        self,
        cls: type[Any],
        key_id: str,
        event_fields: dict[str, Any] | None = None,
        **changes: Any,
    ) -> Any:
        """A key event carrying the key's resulting state (the previous one with ``changes``)."""
        state = msgspec.structs.replace(self.keys.get(key_id, key_state()), **changes)
        self.keys[key_id] = state
        return self._next(cls, key_id=key_id, key=state, **(event_fields or {}))

    def create_key(
        self,
        key_id: str,
        locations: list[str],
        roles: list[str],
        off: tuple[tuple[str, str], ...] = (),
        **changes: Any,
    ) -> Any:
        matrix = [MatrixCell(r, loc, False) for r, loc in off]
        return self.key(
            ev.ApiKeyCreated,
            key_id,
            name=key_id,
            location_ids=locations,
            role_ids=roles,
            matrix=matrix,
            **changes,
        )

    def toggle(self, key_id: str, role_id: str, location_id: str, applies: bool) -> Any:
        cells = [
            c
            for c in self.keys[key_id].matrix
            if (c.role_id, c.location_id) != (role_id, location_id)
        ]
        cells.append(MatrixCell(role_id, location_id, applies))
        fields = {"role_id": role_id, "location_id": location_id, "applies": applies}
        return self.key(ev.RoleLocationToggled, key_id, fields, matrix=cells)


def stream_fields(event: ev.AnyEvent) -> tuple[str, dict[str, bytes]]:
    return position_to_entry_id(event.position), {DATA_FIELD: json_encoder.encode(event)}


def export_lines(events: list[ev.AnyEvent]) -> list[str]:
    """The events as ``apikeys export`` writes them: one JSON object a line."""
    return [json_encoder.encode(event).decode() + "\n" for event in events]
