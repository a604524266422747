"""An organization's reference data, kept by the directory service: the API module switch,
who holds API Administrator, the location tree and the roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.keys.domain.base import CausedAggregate, Codec, dict_of_sets_codec, set_codec
from services.keys.domain.errors import Cause, DomainError
from services.keys.domain.ids import organization_uuid
from services.keys.domain.rules import (
    LOCATIONS_PER_ORGANIZATION,
    ROLES_PER_ORGANIZATION,
    clean_name,
    clean_permissions,
    require_room,
)


@dataclass(frozen=True)
class Location:
    name: str
    parent_id: str | None


@dataclass(frozen=True)
class Role:
    name: str
    permissions: tuple[tuple[str, str], ...]  # (permission, scope)


class Organization(CausedAggregate):
    class Event(CausedAggregate.Event):
        """An event of the organization (who caused it: see ``CausedAggregate``)."""

    class Registered(Event, Aggregate.Created):
        organization_id: str

    snapshot_codecs: ClassVar[dict[str, Codec]] = {
        "administrators": set_codec(),
        "key_ids": (list, dict.fromkeys),
        "children": dict_of_sets_codec(),
        "locations": (
            lambda found: {k: [v.name, v.parent_id] for k, v in found.items()},
            lambda found: {k: Location(*v) for k, v in found.items()},
        ),
        "roles": (
            lambda found: {k: [v.name, [list(p) for p in v.permissions]] for k, v in found.items()},
            lambda found: {
                k: Role(name, tuple((p, scope) for p, scope in perms))
                for k, (name, perms) in found.items()
            },
        ),
    }

    def __init__(self, organization_id: str, command_id: str | None, actor_id: str | None):
        self.organization_id = organization_id
        self.api_module_enabled = False
        self.administrators: set[str] = set()
        self.locations: dict[str, Location] = {}
        self.children: dict[str, set[str]] = {}
        self.roles: dict[str, Role] = {}
        self.key_ids: dict[str, None] = {}  # every key created in it, in order (a set)

    @staticmethod
    def create_id(organization_id: str) -> UUID:
        return organization_uuid(organization_id)

    @classmethod
    def register(cls, organization_id: str, cause: Cause) -> Organization:
        return cls._create_caused(
            cls.Registered, cls.create_id(organization_id), cause, organization_id=organization_id
        )

    # --- guards ------------------------------------------------------------------------------

    def require_key_manager(self, actor_id: str) -> None:
        if not self.api_module_enabled:
            raise DomainError("api_module_disabled", "the API module is disabled")
        if actor_id not in self.administrators:
            raise DomainError("not_api_administrator", "the actor is not an API Administrator")

    def require_location(self, location_id: str) -> Location:
        location = self.locations.get(location_id)
        if location is None:
            raise DomainError("unknown_location", f"no location {location_id!r}")
        return location

    def require_role(self, role_id: str) -> Role:
        role = self.roles.get(role_id)
        if role is None:
            raise DomainError("unknown_role", f"no role {role_id!r}")
        return role

    def is_ancestor(self, ancestor_id: str, location_id: str | None) -> bool:
        while location_id is not None:
            if location_id == ancestor_id:
                return True
            location_id = self.locations[location_id].parent_id
        return False

    # --- module and administrators -----------------------------------------------------------

    class ApiModuleEnabled(Event):
        def apply(self, org: Organization) -> None:
            org.api_module_enabled = True

    class ApiModuleDisabled(Event):
        def apply(self, org: Organization) -> None:
            org.api_module_enabled = False

    class ApiAdministratorGranted(Event):
        user_id: str

        def apply(self, org: Organization) -> None:
            org.administrators.add(self.user_id)

    class ApiAdministratorRevoked(Event):
        user_id: str

        def apply(self, org: Organization) -> None:
            org.administrators.discard(self.user_id)

    def enable_api_module(self, cause: Cause) -> None:
        self._emit(self.ApiModuleEnabled, cause)

    def disable_api_module(self, cause: Cause) -> None:
        self._emit(self.ApiModuleDisabled, cause)

    def grant_api_administrator(self, user_id: str, cause: Cause) -> None:
        self._emit(self.ApiAdministratorGranted, cause, user_id=user_id)

    def revoke_api_administrator(self, user_id: str, cause: Cause) -> None:
        self._emit(self.ApiAdministratorRevoked, cause, user_id=user_id)

    # --- location tree -----------------------------------------------------------------------

    class LocationDefined(Event):
        location_id: str
        name: str
        parent_id: str | None

        def apply(self, org: Organization) -> None:
            org.locations[self.location_id] = Location(self.name, self.parent_id)
            org.children.setdefault(self.location_id, set())
            if self.parent_id is not None:
                org.children.setdefault(self.parent_id, set()).add(self.location_id)

    class LocationRenamed(Event):
        location_id: str
        name: str

        def apply(self, org: Organization) -> None:
            old = org.locations[self.location_id]
            org.locations[self.location_id] = Location(self.name, old.parent_id)

    class LocationMoved(Event):
        location_id: str
        parent_id: str | None

        def apply(self, org: Organization) -> None:
            old = org.locations[self.location_id]
            if old.parent_id is not None:
                org.children[old.parent_id].discard(self.location_id)
            if self.parent_id is not None:
                org.children.setdefault(self.parent_id, set()).add(self.location_id)
            org.locations[self.location_id] = Location(old.name, self.parent_id)

    class LocationRemoved(Event):
        location_id: str

        def apply(self, org: Organization) -> None:
            old = org.locations.pop(self.location_id)
            org.children.pop(self.location_id, None)
            if old.parent_id is not None:
                org.children[old.parent_id].discard(self.location_id)

    def define_location(
        self, location_id: str, name: str, parent_id: str | None, cause: Cause
    ) -> None:
        if location_id in self.locations:
            raise DomainError("location_exists", f"location {location_id!r} already exists")
        require_room(
            self.locations,
            1,
            LOCATIONS_PER_ORGANIZATION,
            "organization_too_large",
            "locations in an organization",
        )
        if parent_id is not None:
            self.require_location(parent_id)
        self._emit(
            self.LocationDefined,
            cause,
            location_id=location_id,
            name=clean_name(name),
            parent_id=parent_id,
        )

    def rename_location(self, location_id: str, name: str, cause: Cause) -> None:
        self.require_location(location_id)
        self._emit(self.LocationRenamed, cause, location_id=location_id, name=clean_name(name))

    def move_location(self, location_id: str, new_parent_id: str | None, cause: Cause) -> None:
        self.require_location(location_id)
        if new_parent_id is not None:
            self.require_location(new_parent_id)
            if self.is_ancestor(location_id, new_parent_id):
                raise DomainError(
                    "location_cycle", "a location cannot move under itself or its descendants"
                )
        self._emit(self.LocationMoved, cause, location_id=location_id, parent_id=new_parent_id)

    def remove_location(self, location_id: str, used_by_a_key: bool, cause: Cause) -> None:
        self.require_location(location_id)
        if self.children.get(location_id):
            raise DomainError("location_has_children", "the location has child locations")
        if used_by_a_key:
            raise DomainError("location_in_use", "an API key uses the location")
        self._emit(self.LocationRemoved, cause, location_id=location_id)

    # --- roles -------------------------------------------------------------------------------

    class RoleDefined(Event):
        role_id: str
        name: str
        permissions: list[list[str]]

        def apply(self, org: Organization) -> None:
            perms = tuple((p, s) for p, s in self.permissions)
            org.roles[self.role_id] = Role(self.name, perms)

    class RolePermissionsChanged(Event):
        role_id: str
        permissions: list[list[str]]

        def apply(self, org: Organization) -> None:
            perms = tuple((p, s) for p, s in self.permissions)
            org.roles[self.role_id] = Role(org.roles[self.role_id].name, perms)

    class RoleRenamed(Event):
        role_id: str
        name: str

        def apply(self, org: Organization) -> None:
            org.roles[self.role_id] = Role(self.name, org.roles[self.role_id].permissions)

    class RoleRemoved(Event):
        role_id: str

        def apply(self, org: Organization) -> None:
            del org.roles[self.role_id]

    def define_role(
        self, role_id: str, name: str, permissions: list[list[str]], cause: Cause
    ) -> None:
        if role_id in self.roles:
            raise DomainError("role_exists", f"role {role_id!r} already exists")
        require_room(
            self.roles,
            1,
            ROLES_PER_ORGANIZATION,
            "organization_too_large",
            "roles in an organization",
        )
        self._emit(
            self.RoleDefined,
            cause,
            role_id=role_id,
            name=clean_name(name),
            permissions=clean_permissions(permissions),
        )

    def change_role_permissions(
        self, role_id: str, permissions: list[list[str]], cause: Cause
    ) -> None:
        self.require_role(role_id)
        self._emit(
            self.RolePermissionsChanged,
            cause,
            role_id=role_id,
            permissions=clean_permissions(permissions),
        )

    def rename_role(self, role_id: str, name: str, cause: Cause) -> None:
        self.require_role(role_id)
        self._emit(self.RoleRenamed, cause, role_id=role_id, name=clean_name(name))

    def remove_role(self, role_id: str, cause: Cause) -> None:
        self.require_role(role_id)
        self._emit(self.RoleRemoved, cause, role_id=role_id)

    # --- keys of the organization ------------------------------------------------------------

    class KeyRegistered(Event):
        key_id: str

        def apply(self, org: Organization) -> None:
            org.key_ids[self.key_id] = None

    class KeysRegistered(Event):
        """Keys of one import joined the organization (one event, not one per key)."""

        key_ids: list[str]

        def apply(self, org: Organization) -> None:
            org.key_ids.update(dict.fromkeys(self.key_ids))

    def register_key(self, key_id: str, cause: Cause) -> None:
        self._emit(self.KeyRegistered, cause, key_id=key_id)

    def has_key(self, key_id: str) -> bool:
        """A key with this id was created in the organization (deleted or not)."""
        return key_id in self.key_ids

    def register_keys(self, key_ids: list[str], cause: Cause) -> None:
        self._emit(self.KeysRegistered, cause, key_ids=list(key_ids))
