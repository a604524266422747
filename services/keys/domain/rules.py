"""The value rules shared by the aggregates' guards: names, permissions, secrets, and the
limits on what one organization, role or key may hold (README: "Limits")."""

from __future__ import annotations

import re
from collections.abc import Sized

from services.keys.domain.errors import DomainError

SCOPES = ("everywhere", "location_and_below", "location_only", "own_items")
MAX_NAME = 100
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
HINT_MAX = 32
# as long as the longest permission a check may ask about (the projection's query limit)
PERMISSION_NAME_MAX = 200
PERMISSIONS_PER_ROLE = 500
LOCATIONS_PER_KEY = 1_000
# every key event carries the whole role x location matrix: at most 10 x 1,000 cells
ROLES_PER_KEY = 10
# the projection holds and stores an organization as one row, rewritten when it changes
LOCATIONS_PER_ORGANIZATION = 20_000
ROLES_PER_ORGANIZATION = 500


def clean_name(name: str) -> str:
    trimmed = name.strip()
    if not trimmed:
        raise DomainError("name_required", "a name is required")
    if len(trimmed) > MAX_NAME:
        raise DomainError("name_too_long", f"a name has at most {MAX_NAME} characters")
    return trimmed


def clean_permissions(permissions: list[list[str]]) -> list[list[str]]:
    seen: dict[tuple[str, str], None] = {}
    for permission, scope in permissions:
        name = permission.strip()
        if not name:
            raise DomainError("invalid_permission", "a permission needs a name")
        if len(name) > PERMISSION_NAME_MAX:
            raise DomainError(
                "value_too_long", f"a permission name has at most {PERMISSION_NAME_MAX} characters"
            )
        if scope not in SCOPES:
            raise DomainError("invalid_scope", f"scope must be one of {', '.join(SCOPES)}")
        seen[(name, scope)] = None
    if len(seen) > PERMISSIONS_PER_ROLE:
        raise DomainError(
            "too_many_permissions", f"a role has at most {PERMISSIONS_PER_ROLE} permissions"
        )
    return [list(p) for p in seen]


def check_secret(secret_sha256: str, secret_hint: str) -> None:
    if not SHA256_HEX.fullmatch(secret_sha256):
        raise DomainError("invalid_secret_hash", "secret_sha256 must be 64 lowercase hex digits")
    if len(secret_hint) > HINT_MAX:
        raise DomainError("invalid_secret_hint", f"secret_hint has at most {HINT_MAX} characters")


def require_room(held: Sized, adding: int, limit: int, code: str, what: str) -> None:
    """``held`` plus ``adding`` more stays within ``limit``, else ``code``."""
    if len(held) + adding > limit:
        raise DomainError(code, f"at most {limit:,} {what}")


def unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))
