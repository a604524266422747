"""Audit answers of the projection service: key history, explanations, permission diffs.

As-of answers reuse the live answer structs of ``contracts.queries``; ``position`` is then the
last event folded to reach that moment.
"""

from datetime import datetime
from typing import Any, Literal

import msgspec

from contracts.common import Scope
from contracts.queries import Answer, CheckAnswer, KeyStatus


class HistoryEntry(msgspec.Struct, kw_only=True):
    position: int
    type: str
    occurred_at: datetime
    actor_id: str | None
    command_id: str | None
    changes: dict[str, Any]


class KeyHistoryAnswer(Answer, omit_defaults=True, kw_only=True):
    key_id: str
    organization_id: str | None
    entries: list[HistoryEntry]
    next_after_position: int | None
    position: int


class LocationLink(msgspec.Struct, frozen=True, kw_only=True):
    """``location_id`` sits under ``parent_id`` since the event at ``position``."""

    location_id: str
    parent_id: str
    position: int | None


class ReasonExplanation(msgspec.Struct, kw_only=True):
    """One granting chain: role permission, role on the key, matrix cell, key location, path."""

    role_id: str
    location_id: str
    scope: Scope
    permission: str
    role_permission_position: int | None
    key_role_position: int | None
    key_location_position: int | None
    cell_position: int | None
    cell_set_by: Literal["toggle", "default"]
    path: list[LocationLink]


class ExplainedCheckAnswer(CheckAnswer, omit_defaults=True, kw_only=True):
    explanation: list[ReasonExplanation] | None = None


class PermissionChange(msgspec.Struct, frozen=True, order=True, kw_only=True):
    permission: str
    location_id: str
    scope: Scope


class PermissionsDiff(msgspec.Struct, kw_only=True):
    key_id: str
    from_moment: datetime
    to_moment: datetime
    from_status: KeyStatus
    to_status: KeyStatus
    gained: list[PermissionChange]
    lost: list[PermissionChange]
    from_position: int
    to_position: int
