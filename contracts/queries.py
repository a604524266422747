"""HTTP query requests and answers of the projection service (msgspec structs only).

Every answer carries ``position``: the global event position the read model had applied when it
answered, so a client can ask later queries with ``min_position`` for read-your-writes.
"""

from typing import Annotated, Literal

import msgspec

from contracts.common import Scope

DenialReason = Literal[
    "unknown_key", "deleted", "api_module_disabled", "disabled", "expired", "not_granted"
]
KeyStatus = Literal["active", "disabled", "deleted", "expired", "api_module_disabled", "unknown"]
VerifyCode = Literal[
    "VALID", "NOT_FOUND", "MALFORMED", "DISABLED", "DELETED", "EXPIRED", "API_MODULE_DISABLED"
]


class Reason(msgspec.Struct, frozen=True, order=True):
    """Why a permission applies: the role, the key location whose cell granted it, the scope."""

    role_id: str
    location_id: str
    scope: Scope


class Answer(msgspec.Struct, omit_defaults=True, kw_only=True):
    """Every query answer: while the projection is behind what has been stored by more than
    its ready lag, ``stale`` is true and ``lag_seconds`` says by how much (else both absent)."""

    stale: bool = False
    lag_seconds: float | None = None


class CheckAnswer(Answer, omit_defaults=True, kw_only=True):
    allowed: bool
    reasons: list[Reason]
    position: int
    denied_because: DenialReason | None = None


class VerifyRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
    permission: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    location_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class VerifyAnswer(Answer, omit_defaults=True, kw_only=True):
    valid: bool
    code: VerifyCode
    key_id: str | None
    organization_id: str | None
    position: int
    allowed: bool | None = None


class PermissionScopes(msgspec.Struct, kw_only=True):
    permission: str
    scopes: list[Scope]
    reasons: list[Reason]


class LocationPermissions(msgspec.Struct, kw_only=True):
    location_id: str
    permissions: list[PermissionScopes]


class KeyPermissionsAnswer(Answer, omit_defaults=True, kw_only=True):
    """One page of a key's permissions; ``next_cursor`` (null on the last page) asks for the
    next. A location whose permissions span two pages appears on both."""

    key_id: str
    organization_id: str | None
    status: KeyStatus
    locations: list[LocationPermissions]
    next_cursor: str | None
    position: int


class KeyHolder(msgspec.Struct, kw_only=True):
    key_id: str
    name: str
    reasons: list[Reason]


class OrganizationKeysAnswer(Answer, omit_defaults=True, kw_only=True):
    organization_id: str
    permission: str
    location_id: str
    keys: list[KeyHolder]
    position: int


class MissingEvents(msgspec.Struct, kw_only=True):
    """Every published event after ``after_position`` up to ``up_to_position`` is missing."""

    after_position: int
    up_to_position: int


class HealthAnswer(msgspec.Struct, kw_only=True):
    status: Literal["ok", "ready", "not_ready"]
    position: int
    caught_up_seconds_ago: float | None = None
    stored_position: int | None = None  # the newest stored position the projection knows of
    lag_seconds: float | None = None
    reason: str | None = None  # why not ready
    # with reason "events_missing": the events the stream no longer holds, being caught up
    missing: MissingEvents | None = None


class ErrorAnswer(msgspec.Struct, omit_defaults=True, kw_only=True):
    """Every 4xx and 5xx answer: what went wrong (``error``) and in words (``detail``)."""

    error: str
    detail: str
    position: int | None = None
    lag_seconds: float | None = None
