"""The callers file of the query API (``APIKEYS_CALLERS_FILE``): a JSON list of callers, each
with the SHA-256 of its token (never the token), its scopes and the organizations it may ask
about (``["*"]``: every organization)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

import msgspec

from contracts.common import Id

CallerScope = Literal["verify", "check", "list", "audit"]
CALLER_SCOPES: tuple[str, ...] = get_args(CallerScope)
ALL_ORGANIZATIONS = "*"
MAX_CALLERS_FILE_BYTES = 1024 * 1024
MAX_CALLERS = 1000
MAX_CALLER_ORGANIZATIONS = 10_000

CallerName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
SecretHash = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class CallerEntry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: CallerName
    secret_sha256: SecretHash
    scopes: Annotated[list[CallerScope], msgspec.Meta(min_length=1, max_length=4)]
    organizations: Annotated[
        list[Id], msgspec.Meta(min_length=1, max_length=MAX_CALLER_ORGANIZATIONS)
    ]

    def __post_init__(self) -> None:
        if ALL_ORGANIZATIONS in self.organizations and len(self.organizations) > 1:
            raise ValueError(f"{ALL_ORGANIZATIONS!r} stands alone in organizations")


CallersList = Annotated[list[CallerEntry], msgspec.Meta(max_length=MAX_CALLERS)]


def decode_callers(data: bytes) -> list[CallerEntry]:
    """The callers of a file's content; ValueError (msgspec's errors are ValueErrors) when it
    is too large, not a valid list, or names a caller or a hash twice."""
    if len(data) > MAX_CALLERS_FILE_BYTES:
        raise ValueError(f"over {MAX_CALLERS_FILE_BYTES} bytes")
    callers = msgspec.json.decode(data, type=CallersList)
    for field in ("name", "secret_sha256"):
        values = [getattr(c, field) for c in callers]
        if len(set(values)) != len(values):
            raise ValueError(f"two callers have the same {field}")
    return callers
