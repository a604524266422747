"""Value structs used by commands and events alike."""

from typing import Literal

import msgspec

Scope = Literal["everywhere", "location_and_below", "location_only", "own_items"]
SCOPES: tuple[str, ...] = ("everywhere", "location_and_below", "location_only", "own_items")


class Permission(msgspec.Struct, frozen=True):
    permission: str
    scope: Scope


class RoleLocation(msgspec.Struct, frozen=True):
    role_id: str
    location_id: str


class MatrixCell(msgspec.Struct, frozen=True):
    role_id: str
    location_id: str
    applies: bool
