"""The value rules shared by the aggregates' guards: names, permissions, secrets."""

from __future__ import annotations

import re

from services.keys.domain.errors import DomainError

SCOPES = ("everywhere", "location_and_below", "location_only", "own_items")
MAX_NAME = 100
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
HINT_MAX = 32


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
        if not permission.strip():
            raise DomainError("invalid_permission", "a permission needs a name")
        if scope not in SCOPES:
            raise DomainError("invalid_scope", f"scope must be one of {', '.join(SCOPES)}")
        seen[(permission.strip(), scope)] = None
    return [list(p) for p in seen]


def check_secret(secret_sha256: str, secret_hint: str) -> None:
    if not SHA256_HEX.fullmatch(secret_sha256):
        raise DomainError("invalid_secret_hash", "secret_sha256 must be 64 lowercase hex digits")
    if len(secret_hint) > HINT_MAX:
        raise DomainError("invalid_secret_hint", f"secret_hint has at most {HINT_MAX} characters")


def unique(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))
