"""Events published on the events stream, one per stored event, in position order.

Every event carries the resulting state of what it changed, so a consumer needs no earlier
state: key events carry the whole key (``key``), location and role events the whole location
or role. Secret hashes are published; tokens never are.
"""

from datetime import datetime

import msgspec

from contracts.common import MatrixCell, Permission


class KeyState(msgspec.Struct, kw_only=True):
    name: str
    location_ids: list[str]
    role_ids: list[str]
    matrix: list[MatrixCell]
    enabled: bool
    deleted: bool
    expires_at: datetime | None
    secret_sha256: str
    secret_hint: str
    previous_secret_sha256: str | None = None
    previous_secret_valid_until: datetime | None = None


class Event(msgspec.Struct, tag_field="type", kw_only=True):
    position: int
    organization_id: str
    occurred_at: datetime
    actor_id: str | None = None
    command_id: str | None = None
    # the position of the event published just before this one on the stream (0 for the
    # first); positions skip numbers, so this is how a reader knows it has missed none.
    # None: published before the field existed.
    previous_position: int | None = None


class KeyEvent(Event):
    key_id: str
    key: KeyState


class OrganizationEvent(Event):
    pass


# --- key events ------------------------------------------------------------------------------


class ApiKeyCreated(KeyEvent, tag=True):
    pass


class ApiKeyRenamed(KeyEvent, tag=True):
    name: str


class KeyLocationAdded(KeyEvent, tag=True):
    location_id: str


class KeyLocationRemoved(KeyEvent, tag=True):
    location_id: str


class KeyRoleAdded(KeyEvent, tag=True):
    role_id: str


class KeyRoleRemoved(KeyEvent, tag=True):
    role_id: str


class RoleLocationToggled(KeyEvent, tag=True):
    role_id: str
    location_id: str
    applies: bool


class KeySecretRotated(KeyEvent, tag=True):
    pass


class ApiKeyDisabled(KeyEvent, tag=True):
    pass


class ApiKeyEnabled(KeyEvent, tag=True):
    pass


class ApiKeyDeleted(KeyEvent, tag=True):
    pass


# --- organization events ---------------------------------------------------------------------


class OrganizationRegistered(OrganizationEvent, tag=True):
    pass


class ApiModuleEnabled(OrganizationEvent, tag=True):
    pass


class ApiModuleDisabled(OrganizationEvent, tag=True):
    pass


class ApiAdministratorGranted(OrganizationEvent, tag=True):
    user_id: str


class ApiAdministratorRevoked(OrganizationEvent, tag=True):
    user_id: str


class LocationDefined(OrganizationEvent, tag=True):
    location_id: str
    name: str
    parent_id: str | None


class LocationRenamed(OrganizationEvent, tag=True):
    location_id: str
    name: str
    parent_id: str | None


class LocationMoved(OrganizationEvent, tag=True):
    location_id: str
    name: str
    parent_id: str | None


class LocationRemoved(OrganizationEvent, tag=True):
    location_id: str


class RoleDefined(OrganizationEvent, tag=True):
    role_id: str
    name: str
    permissions: list[Permission]


class RolePermissionsChanged(OrganizationEvent, tag=True):
    role_id: str
    name: str
    permissions: list[Permission]


class RoleRenamed(OrganizationEvent, tag=True):
    role_id: str
    name: str
    permissions: list[Permission]


class RoleRemoved(OrganizationEvent, tag=True):
    role_id: str


AnyEvent = (
    ApiKeyCreated
    | ApiKeyRenamed
    | KeyLocationAdded
    | KeyLocationRemoved
    | KeyRoleAdded
    | KeyRoleRemoved
    | RoleLocationToggled
    | KeySecretRotated
    | ApiKeyDisabled
    | ApiKeyEnabled
    | ApiKeyDeleted
    | OrganizationRegistered
    | ApiModuleEnabled
    | ApiModuleDisabled
    | ApiAdministratorGranted
    | ApiAdministratorRevoked
    | LocationDefined
    | LocationRenamed
    | LocationMoved
    | LocationRemoved
    | RoleDefined
    | RolePermissionsChanged
    | RoleRenamed
    | RoleRemoved
)

event_decoder = msgspec.json.Decoder(AnyEvent)
