"""The read model's stored truth, as values: organizations, keys and the secret index's entries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

import msgspec

from contracts import events as ev
from contracts.common import Permission


class LocationNode(msgspec.Struct):
    name: str
    parent_id: str | None


class RoleDefinition(msgspec.Struct):
    name: str
    permissions: list[Permission]


class OrganizationView(msgspec.Struct):
    api_module_enabled: bool = False
    locations: dict[str, LocationNode] = {}
    roles: dict[str, RoleDefinition] = {}
    administrators: list[str] = []  # sorted user ids holding API Administrator


class KeyMeta(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Who made the key and when, who changed it last and when (from its events)."""

    created_at: datetime | None = None
    created_by: str | None = None
    changed_at: datetime | None = None
    changed_by: str | None = None


class StoredKey(ev.KeyState, kw_only=True, omit_defaults=True):
    """A key's stored row: its state and its ``meta`` (rows stored before it had none)."""

    meta: KeyMeta = KeyMeta()

    def view(self, organization_id: str) -> KeyView:
        fields = {name: getattr(self, name) for name in ev.KeyState.__struct_fields__}
        return KeyView(organization_id, ev.KeyState(**fields), self.meta)


class KeyView(msgspec.Struct):
    organization_id: str
    state: ev.KeyState
    meta: KeyMeta = KeyMeta()

    def stored(self) -> StoredKey:
        state = self.state
        fields = {name: getattr(state, name) for name in ev.KeyState.__struct_fields__}
        return StoredKey(**fields, meta=self.meta)


class SecretRef(NamedTuple):
    key_id: str
    kind: Literal["current", "previous"]
