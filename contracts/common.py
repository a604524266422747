"""Value structs used by commands and events alike, and the length of an id."""

from typing import Annotated, Literal

import msgspec

# every id on the wire (organization, key, location, role, user, command): 1-200 characters;
# a command with a longer one fails the schema (``invalid_command``)
ID_MAX = 200
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=ID_MAX)]

Scope = Literal["everywhere", "location_and_below", "location_only", "own_items"]
SCOPES: tuple[str, ...] = ("everywhere", "location_and_below", "location_only", "own_items")


class Permission(msgspec.Struct, frozen=True):
    permission: str
    scope: Scope


class RoleLocation(msgspec.Struct, frozen=True):
    role_id: Id
    location_id: Id


class MatrixCell(msgspec.Struct, frozen=True):
    role_id: str
    location_id: str
    applies: bool
