"""The projection service's answers for administration pages: an organization's directory (its
API module, administrators, location tree and roles) and its keys with their details.

Like every query answer they carry ``position`` (the read model's position when answering).
"""

from datetime import datetime

import msgspec

from contracts.common import MatrixCell, Permission
from contracts.queries import Answer, KeyStatus


class LocationEntry(msgspec.Struct, kw_only=True):
    """A location with its path: the names from the root down to it, itself last."""

    location_id: str
    name: str
    parent_id: str | None
    path: list[str]


class RoleEntry(msgspec.Struct, kw_only=True):
    role_id: str
    name: str
    permissions: list[Permission]


class OrganizationAnswer(Answer, omit_defaults=True, kw_only=True):
    """``known`` is false for an organization the projection has never seen an event of."""

    organization_id: str
    known: bool
    api_module_enabled: bool
    administrators: list[str]
    locations: list[LocationEntry]
    roles: list[RoleEntry]
    position: int


class KeyDetails(msgspec.Struct, kw_only=True):
    """A key as an administrator sees it; never its secret hash, only the hint."""

    key_id: str
    organization_id: str
    name: str
    location_ids: list[str]
    role_ids: list[str]
    matrix: list[MatrixCell]
    status: KeyStatus
    enabled: bool
    deleted: bool
    expires_at: datetime | None
    secret_hint: str
    previous_secret_valid_until: datetime | None
    created_at: datetime | None
    created_by: str | None
    changed_at: datetime | None
    changed_by: str | None


class OrganizationKeyListAnswer(Answer, omit_defaults=True, kw_only=True):
    """Every key of the organization that is not deleted, by name."""

    organization_id: str
    keys: list[KeyDetails]
    position: int


class KeyDetailsAnswer(Answer, omit_defaults=True, kw_only=True):
    key: KeyDetails
    position: int
