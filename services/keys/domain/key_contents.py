"""The rule on a new key's contents, checked against its organization's reference data."""

from __future__ import annotations

from services.keys.domain.errors import DomainError
from services.keys.domain.organization import Organization
from services.keys.domain.rules import LOCATIONS_PER_KEY, ROLES_PER_KEY, require_room


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
