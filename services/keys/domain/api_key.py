"""An API key: its name, network locations, roles, the role x location matrix, the hash of
its secret, and its status. Every rule is a guard here; the organization is passed in for the
rules that need its reference data (locations and roles must exist)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from services.keys.domain.base import CausedAggregate, Codec, pairs_codec
from services.keys.domain.errors import Cause, DomainError
from services.keys.domain.ids import key_uuid
from services.keys.domain.organization import Organization
from services.keys.domain.rules import (
    LOCATIONS_PER_KEY,
    ROLES_PER_KEY,
    check_secret,
    clean_name,
    require_room,
    unique,
)


def require_valid_contents(
    org: Organization, locations: list[str], roles: list[str], off_cells: list[tuple[str, str]]
) -> None:
    """A new key's locations and roles exist in the organization (at least one location), and
    each cell switched off names one of them."""
    if not locations:
        raise DomainError("locations_required", "at least one network location is required")
    require_room(locations, 0, LOCATIONS_PER_KEY, "too_many_locations", "locations on a key")
    require_room(roles, 0, ROLES_PER_KEY, "too_many_roles", "roles on a key")
    for location_id in locations:
        org.require_location(location_id)
    for role_id in roles:
        org.require_role(role_id)
    role_set, location_set = set(roles), set(locations)
    for role_id, location_id in off_cells:
        if role_id not in role_set:
            raise DomainError("role_not_on_key", f"role {role_id!r} is not on the key")
        if location_id not in location_set:
            raise DomainError("location_not_on_key", f"{location_id!r} is not on the key")


class ApiKey(CausedAggregate):
    class Event(CausedAggregate.Event):
        """An event of the key (who caused it: see ``CausedAggregate``)."""

    class Created(Event, Aggregate.Created):
        organization_id: str
        key_id: str
        name: str
        location_ids: list[str]
        role_ids: list[str]
        off_cells: list[list[str]]
        secret_sha256: str
        secret_hint: str
        expires_at: datetime | None

    snapshot_codecs: ClassVar[dict[str, Codec]] = {"matrix": pairs_codec()}

    def __init__(
        self,
        organization_id: str,
        key_id: str,
        name: str,
        location_ids: list[str],
        role_ids: list[str],
        off_cells: list[list[str]],
        secret_sha256: str,
        secret_hint: str,
        expires_at: datetime | None,
        command_id: str | None,
        actor_id: str | None,
    ):
        self.organization_id = organization_id
        self.key_id = key_id
        self.name = name
        self.location_ids = list(location_ids)
        self.role_ids = list(role_ids)
        self.matrix: dict[tuple[str, str], bool] = {
            (r, loc): True for r in role_ids for loc in location_ids
        }
        for role_id, location_id in off_cells:
            self.matrix[(role_id, location_id)] = False
        self.secret_sha256 = secret_sha256
        self.secret_hint = secret_hint
        self.previous_secret_sha256: str | None = None
        self.previous_secret_valid_until: datetime | None = None
        self.expires_at = expires_at
        self.enabled = True
        self.deleted = False

    @staticmethod
    def create_id(key_id: str) -> UUID:
        return key_uuid(key_id)

    @classmethod
    def create(
        cls,
        org: Organization,
        key_id: str,
        *,
        name: str,
        location_ids: list[str],
        role_ids: list[str],
        off_cells: list[tuple[str, str]],
        secret_sha256: str,
        secret_hint: str,
        expires_at: datetime | None,
        cause: Cause,
    ) -> ApiKey:
        clean = clean_name(name)
        locations, roles = unique(location_ids), unique(role_ids)
        require_valid_contents(org, locations, roles, off_cells)
        check_secret(secret_sha256, secret_hint)
        return cls._create_caused(
            cls.Created,
            cls.create_id(key_id),
            cause,
            organization_id=org.organization_id,
            key_id=key_id,
            name=clean,
            location_ids=locations,
            role_ids=roles,
            off_cells=[list(c) for c in dict.fromkeys(off_cells)],
            secret_sha256=secret_sha256,
            secret_hint=secret_hint,
            expires_at=expires_at,
        )

    # --- guards ------------------------------------------------------------------------------

    def require_not_deleted(self) -> None:
        if self.deleted:
            raise DomainError("key_deleted", "the key is deleted")

    def require_location_on_key(self, location_id: str) -> None:
        if location_id not in self.location_ids:
            raise DomainError("location_not_on_key", f"location {location_id!r} is not on the key")

    def require_role_on_key(self, role_id: str) -> None:
        if role_id not in self.role_ids:
            raise DomainError("role_not_on_key", f"role {role_id!r} is not on the key")

    def matrix_available(self) -> bool:
        return len(self.location_ids) >= 2 and len(self.role_ids) >= 1

    # --- events ------------------------------------------------------------------------------

    class Renamed(Event):
        name: str

        def apply(self, key: ApiKey) -> None:
            key.name = self.name

    class LocationAdded(Event):
        location_id: str

        def apply(self, key: ApiKey) -> None:
            key.location_ids.append(self.location_id)
            for role_id in key.role_ids:
                key.matrix[(role_id, self.location_id)] = True

    class LocationRemoved(Event):
        location_id: str

        def apply(self, key: ApiKey) -> None:
            key.location_ids.remove(self.location_id)
            for role_id in key.role_ids:
                key.matrix.pop((role_id, self.location_id), None)

    class RoleAdded(Event):
        role_id: str

        def apply(self, key: ApiKey) -> None:
            key.role_ids.append(self.role_id)
            for location_id in key.location_ids:
                key.matrix[(self.role_id, location_id)] = True

    class RoleRemoved(Event):
        role_id: str

        def apply(self, key: ApiKey) -> None:
            key.role_ids.remove(self.role_id)
            for location_id in key.location_ids:
                key.matrix.pop((self.role_id, location_id), None)

    class RoleLocationToggled(Event):
        role_id: str
        location_id: str
        applies: bool

        def apply(self, key: ApiKey) -> None:
            key.matrix[(self.role_id, self.location_id)] = self.applies

    class SecretRotated(Event):
        secret_sha256: str
        secret_hint: str
        previous_secret_sha256: str | None
        previous_secret_valid_until: datetime | None

        def apply(self, key: ApiKey) -> None:
            key.secret_sha256 = self.secret_sha256
            key.secret_hint = self.secret_hint
            key.previous_secret_sha256 = self.previous_secret_sha256
            key.previous_secret_valid_until = self.previous_secret_valid_until

    class Disabled(Event):
        def apply(self, key: ApiKey) -> None:
            key.enabled = False

    class Enabled(Event):
        def apply(self, key: ApiKey) -> None:
            key.enabled = True

    class Deleted(Event):
        def apply(self, key: ApiKey) -> None:
            key.deleted = True

    # --- commands ----------------------------------------------------------------------------

    def rename(self, name: str, cause: Cause) -> None:
        self.require_not_deleted()
        self._emit(self.Renamed, cause, name=clean_name(name))

    def add_location(self, org: Organization, location_id: str, cause: Cause) -> None:
        self.require_not_deleted()
        org.require_location(location_id)
        if location_id in self.location_ids:
            raise DomainError("location_already_on_key", f"{location_id!r} is already on the key")
        require_room(
            self.location_ids, 1, LOCATIONS_PER_KEY, "too_many_locations", "locations on a key"
        )
        self._emit(self.LocationAdded, cause, location_id=location_id)

    def remove_location(self, location_id: str, cause: Cause) -> None:
        self.require_not_deleted()
        self.require_location_on_key(location_id)
        if len(self.location_ids) == 1:
            raise DomainError("last_location", "a key keeps at least one network location")
        self._emit(self.LocationRemoved, cause, location_id=location_id)

    def add_role(self, org: Organization, role_id: str, cause: Cause) -> None:
        self.require_not_deleted()
        org.require_role(role_id)
        if role_id in self.role_ids:
            raise DomainError("role_already_on_key", f"role {role_id!r} is already on the key")
        require_room(self.role_ids, 1, ROLES_PER_KEY, "too_many_roles", "roles on a key")
        self._emit(self.RoleAdded, cause, role_id=role_id)

    def remove_role(self, role_id: str, cause: Cause) -> None:
        self.require_not_deleted()
        self.require_role_on_key(role_id)
        self._emit(self.RoleRemoved, cause, role_id=role_id)

    def drop_removed_role(self, role_id: str, cause: Cause) -> None:
        """The organization removed the role: it leaves the key, deleted or not."""
        if role_id in self.role_ids:
            self._emit(self.RoleRemoved, cause, role_id=role_id)

    def toggle_role_location(
        self, role_id: str, location_id: str, applies: bool | None, cause: Cause
    ) -> None:
        self.require_not_deleted()
        if not self.matrix_available():
            raise DomainError(
                "matrix_unavailable", "the matrix needs two or more locations and a role"
            )
        self.require_role_on_key(role_id)
        self.require_location_on_key(location_id)
        current = self.matrix.get((role_id, location_id), True)
        new = (not current) if applies is None else applies
        self._emit(
            self.RoleLocationToggled, cause, role_id=role_id, location_id=location_id, applies=new
        )

    def rotate_secret(
        self,
        secret_sha256: str,
        secret_hint: str,
        grace_seconds: int,
        now: datetime,
        cause: Cause,
    ) -> None:
        self.require_not_deleted()
        check_secret(secret_sha256, secret_hint)
        grace = grace_seconds > 0
        self._emit(
            self.SecretRotated,
            cause,
            secret_sha256=secret_sha256,
            secret_hint=secret_hint,
            previous_secret_sha256=self.secret_sha256 if grace else None,
            previous_secret_valid_until=now + timedelta(seconds=grace_seconds) if grace else None,
        )

    def disable(self, cause: Cause) -> None:
        self.require_not_deleted()
        self._emit(self.Disabled, cause)

    def enable(self, cause: Cause) -> None:
        self.require_not_deleted()
        self._emit(self.Enabled, cause)

    def delete(self, cause: Cause) -> None:
        self.require_not_deleted()
        self._emit(self.Deleted, cause)

    def uses_location(self, location_id: str) -> bool:
        return not self.deleted and location_id in self.location_ids
