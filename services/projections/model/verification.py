"""Token verification: a token's SHA-256 looked up in the read model, an old secret only in its
grace period. Pure: the caller hashes the token and gives the time."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import NamedTuple

from contracts.queries import KeyStatus, VerifyCode
from services.projections.model.grants import aware
from services.projections.model.queries import key_status
from services.projections.model.state import ReadModel


class Verification(NamedTuple):
    code: VerifyCode
    key_id: str | None
    organization_id: str | None


NOT_FOUND = Verification("NOT_FOUND", None, None)
_STATUS_CODES: dict[KeyStatus, VerifyCode] = {
    "active": "VALID",
    "deleted": "DELETED",
    "api_module_disabled": "API_MODULE_DISABLED",
    "disabled": "DISABLED",
    "expired": "EXPIRED",
    "unknown": "NOT_FOUND",
}


def verify_secret(model: ReadModel, secret_sha256: str, now: datetime) -> Verification:
    ref = model.secrets.get(secret_sha256)
    view = model.keys.get(ref.key_id) if ref else None
    if ref is None or view is None:
        return NOT_FOUND
    state = view.state
    if ref.kind == "current":
        matches = hmac.compare_digest(state.secret_sha256, secret_sha256)
    else:
        until = state.previous_secret_valid_until
        matches = hmac.compare_digest(state.previous_secret_sha256 or "", secret_sha256) and (
            until is not None and aware(now) < aware(until)
        )
    if not matches:
        return NOT_FOUND
    code = _STATUS_CODES[key_status(model, ref.key_id, now)]
    return Verification(code, ref.key_id, view.organization_id)
