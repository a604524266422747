"""The read model's stored truth, as values: organizations, keys and the secret index's entries."""

from __future__ import annotations

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


class KeyView(msgspec.Struct):
    organization_id: str
    state: ev.KeyState


class SecretRef(NamedTuple):
    key_id: str
    kind: Literal["current", "previous"]
