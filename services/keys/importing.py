"""ImportApiKeys: each key of the command goes through the very guards of ``CreateApiKey``
(``ApiKey.create``); a refused key is reported and the others go in. A key whose id is already
taken in the organization is reported as already present, so importing twice changes nothing;
one taken in another organization is refused as ``CreateApiKey`` refuses it (``key_exists``).
"""

from __future__ import annotations

from typing import Protocol

from contracts import commands as c
from contracts.results import Error, KeyOutcome
from services.keys.domain import ApiKey, Cause, DomainError, Organization


class Keys(Protocol):
    """What the import needs from the unit of work (see ``handlers.UnitOfWork``)."""

    def key_exists(self, key_id: str) -> bool: ...

    def touch(self, *aggregates: Organization | ApiKey) -> None: ...


def require_new_key(key_id: str, uow: Keys) -> None:
    """Key ids are global: one already used, in any organization, cannot be created again."""
    if uow.key_exists(key_id):
        raise DomainError("key_exists", f"key {key_id!r} already exists")


def new_key(org: Organization, spec: c.CreateApiKey | c.ImportedKey, cause: Cause) -> ApiKey:
    """A new key as the command describes it: every rule of a new key is checked here."""
    return ApiKey.create(
        org,
        spec.key_id,
        name=spec.name,
        location_ids=spec.location_ids,
        role_ids=spec.role_ids,
        off_cells=[(cell.role_id, cell.location_id) for cell in spec.role_locations],
        secret_sha256=spec.secret_sha256,
        secret_hint=spec.secret_hint,
        expires_at=spec.expires_at,
        cause=cause,
    )


def import_keys(
    command: c.ImportApiKeys, org: Organization, uow: Keys, cause: Cause
) -> list[KeyOutcome]:
    """Create each key that is new and valid; one outcome per key, in the command's order.
    The organization learns of the new keys in one event."""
    outcomes: list[KeyOutcome] = []
    created: dict[str, None] = {}  # the keys this command creates, in order
    for spec in command.keys:
        outcomes.append(_import_one(spec, org, uow, cause, created))
    if created:
        org.register_keys(list(created), cause)
        uow.touch(org)
    return outcomes


def _import_one(
    spec: c.ImportedKey, org: Organization, uow: Keys, cause: Cause, created: dict[str, None]
) -> KeyOutcome:
    key_id = spec.key_id
    if key_id in created or org.has_key(key_id):
        return KeyOutcome(key_id=key_id, status="already_present")
    try:
        require_new_key(key_id, uow)  # taken in another organization
        key = new_key(org, spec, cause)
    except DomainError as error:
        return rejected(key_id, error.code, error.message)
    uow.touch(key)
    created[key_id] = None
    return KeyOutcome(key_id=key_id, status="accepted")


def rejected(key_id: str, code: str, message: str) -> KeyOutcome:
    return KeyOutcome(key_id=key_id, status="rejected", error=Error(code, message))


def all_rejected(command: c.ImportApiKeys, error: Error) -> list[KeyOutcome]:
    """The outcomes of an import refused as a whole (the actor may not manage keys, ...)."""
    return [rejected(spec.key_id, error.code, error.message) for spec in command.keys]
