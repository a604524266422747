"""Commands published by upstream services onto the commands stream.

A tagged union on ``type``: one typed decoder turns a JSON object into the right struct.
Directory commands come from the trusted directory service; key commands carry the actor.
"""

from datetime import datetime
from typing import Annotated

import msgspec

from contracts.common import Id, Permission, RoleLocation


class Command(msgspec.Struct, tag_field="type", kw_only=True, forbid_unknown_fields=True):
    command_id: Id
    organization_id: Id


class DirectoryCommand(Command):
    pass


class KeyCommand(Command):
    actor_id: Id
    key_id: Id


# --- directory -------------------------------------------------------------------------------


class EnableApiModule(DirectoryCommand, tag=True):
    pass


class DisableApiModule(DirectoryCommand, tag=True):
    pass


class GrantApiAdministrator(DirectoryCommand, tag=True):
    user_id: Id


class RevokeApiAdministrator(DirectoryCommand, tag=True):
    user_id: Id


class DefineLocation(DirectoryCommand, tag=True):
    location_id: Id
    name: str
    parent_id: Id | None = None


class RenameLocation(DirectoryCommand, tag=True):
    location_id: Id
    name: str


class MoveLocation(DirectoryCommand, tag=True):
    location_id: Id
    new_parent_id: Id | None


class RemoveLocation(DirectoryCommand, tag=True):
    location_id: Id


class DefineRole(DirectoryCommand, tag=True):
    role_id: Id
    name: str
    permissions: list[Permission] = []


class ChangeRolePermissions(DirectoryCommand, tag=True):
    role_id: Id
    permissions: list[Permission]


class RenameRole(DirectoryCommand, tag=True):
    role_id: Id
    name: str


class RemoveRole(DirectoryCommand, tag=True):
    role_id: Id


# --- keys ------------------------------------------------------------------------------------


class CreateApiKey(KeyCommand, tag=True):
    name: str
    location_ids: list[Id]
    secret_sha256: str
    role_ids: list[Id] = []
    role_locations: list[RoleLocation] = []  # cells to switch off at creation
    secret_hint: str = ""
    expires_at: datetime | None = None


class RenameApiKey(KeyCommand, tag=True):
    name: str


class AddKeyLocation(KeyCommand, tag=True):
    location_id: Id


class RemoveKeyLocation(KeyCommand, tag=True):
    location_id: Id


class AddKeyRole(KeyCommand, tag=True):
    role_id: Id


class RemoveKeyRole(KeyCommand, tag=True):
    role_id: Id


class ToggleRoleLocation(KeyCommand, tag=True):
    role_id: Id
    location_id: Id
    applies: bool | None = None


class RotateKeySecret(KeyCommand, tag=True):
    secret_sha256: str
    secret_hint: str = ""
    grace_seconds: Annotated[int, msgspec.Meta(ge=0, le=30 * 24 * 3600)] = 0


class DisableApiKey(KeyCommand, tag=True):
    pass


class EnableApiKey(KeyCommand, tag=True):
    pass


class DeleteApiKey(KeyCommand, tag=True):
    pass


# --- bulk import -----------------------------------------------------------------------------

# most keys one ImportApiKeys command carries (the entry-size limit applies as well)
IMPORT_MAX_KEYS = 1000


class ImportedKey(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One key of an import: the fields of ``CreateApiKey`` that describe the key."""

    key_id: Id
    name: str
    location_ids: list[Id]
    secret_sha256: str
    role_ids: list[Id] = []
    role_locations: list[RoleLocation] = []  # cells to switch off at creation
    secret_hint: str = ""
    expires_at: datetime | None = None


class ImportApiKeys(Command, tag=True):
    """Existing keys (already hashed) of one organization, each created as by
    ``CreateApiKey`` unless a key with its id is already there."""

    actor_id: Id
    keys: Annotated[list[ImportedKey], msgspec.Meta(min_length=1, max_length=IMPORT_MAX_KEYS)]


AnyCommand = (
    EnableApiModule
    | DisableApiModule
    | GrantApiAdministrator
    | RevokeApiAdministrator
    | DefineLocation
    | RenameLocation
    | MoveLocation
    | RemoveLocation
    | DefineRole
    | ChangeRolePermissions
    | RenameRole
    | RemoveRole
    | CreateApiKey
    | RenameApiKey
    | AddKeyLocation
    | RemoveKeyLocation
    | AddKeyRole
    | RemoveKeyRole
    | ToggleRoleLocation
    | RotateKeySecret
    | DisableApiKey
    | EnableApiKey
    | DeleteApiKey
    | ImportApiKeys
)

COMMAND_TYPES: frozenset[str] = frozenset(
    cls.__name__
    for cls in AnyCommand.__args__  # type: ignore[attr-defined]
)
command_decoder = msgspec.json.Decoder(AnyCommand)
