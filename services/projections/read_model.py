"""The read model's data: organizations, keys, the secret index and the derived caches. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

import msgspec

from contracts import events as ev
from contracts.common import Permission

if TYPE_CHECKING:
    from services.projections.grants import AnswerTable, KeyGrants, OrgIndex


class LocationNode(msgspec.Struct):
    name: str
    parent_id: str | None


class RoleDefinition(msgspec.Struct):
    name: str
    permissions: list[Permission]


class OrganizationView(msgspec.Struct):
    api_module_enabled: bool = False
    locations: dict[str, LocationNode] = {}
    roles: dict[str, RoleDefinition] = {}


class KeyView(msgspec.Struct):
    organization_id: str
    state: ev.KeyState


class SecretRef(NamedTuple):
    key_id: str
    kind: Literal["current", "previous"]


class Touched(NamedTuple):
    """What one applied event changed, so a store writes only those rows."""

    organization_id: str
    key_id: str | None


@dataclass
class ReadModel:
    position: int = 0
    organizations: dict[str, OrganizationView] = field(default_factory=dict)
    keys: dict[str, KeyView] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    org_keys: dict[str, set[str]] = field(default_factory=dict)
    # derived, never stored: compiled grants per key, an index (tree, grant blocks) per org,
    # the shared answers (one object per distinct set of reasons, whatever key holds it)
    grant_cache: dict[str, KeyGrants] = field(default_factory=dict)
    org_indexes: dict[str, OrgIndex] = field(default_factory=dict)
    answers: AnswerTable = field(default_factory=dict)
