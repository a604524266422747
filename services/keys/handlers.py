"""One function per command: load what it needs, call the aggregates, return what changed.

Guards run before anything changes, so a refused command leaves every aggregate as it was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from contracts import commands as c
from contracts.results import KeyOutcome
from services.keys.domain import ApiKey, Cause, DomainError, Organization
from services.keys.importing import import_keys, new_key, require_new_key


class UnitOfWork(Protocol):
    """What a handler needs from the processor: aggregates by business id (``None`` when
    there is none), and ``touch`` for the aggregates it changed or created (to be saved)."""

    def organization(self, organization_id: str) -> Organization | None: ...

    def key(self, key_id: str) -> ApiKey | None: ...

    def key_exists(self, key_id: str) -> bool: ...

    def touch(self, *aggregates: Organization | ApiKey) -> None: ...


def handle(command: c.AnyCommand, uow: UnitOfWork, now: datetime) -> list[KeyOutcome] | None:
    """Apply the command; an import returns the outcome of each of its keys."""
    if isinstance(command, c.ImportApiKeys):
        org = authorized_organization(command, uow)
        return import_keys(command, org, uow, Cause(command.command_id, command.actor_id))
    if isinstance(command, c.KeyCommand):
        handle_key_command(command, uow, now)
    else:
        handle_directory_command(command, uow)
    return None


def handle_directory_command(command: c.AnyCommand, uow: UnitOfWork) -> None:
    cause = Cause(command.command_id)
    org = uow.organization(command.organization_id)
    if org is None:
        org = Organization.register(command.organization_id, cause)
    if isinstance(command, c.RemoveRole):
        remove_role(command.role_id, org, uow, cause)
        return
    apply_directory_command(command, org, uow, cause)
    uow.touch(org)


def apply_directory_command(
    command: c.AnyCommand, org: Organization, uow: UnitOfWork, cause: Cause
) -> None:
    match command:
        case c.EnableApiModule():
            org.enable_api_module(cause)
        case c.DisableApiModule():
            org.disable_api_module(cause)
        case c.GrantApiAdministrator(user_id=user_id):
            org.grant_api_administrator(user_id, cause)
        case c.RevokeApiAdministrator(user_id=user_id):
            org.revoke_api_administrator(user_id, cause)
        case c.DefineLocation(location_id=location_id, name=name, parent_id=parent_id):
            org.define_location(location_id, name, parent_id, cause)
        case c.RenameLocation(location_id=location_id, name=name):
            org.rename_location(location_id, name, cause)
        case c.MoveLocation(location_id=location_id, new_parent_id=parent_id):
            org.move_location(location_id, parent_id, cause)
        case c.RemoveLocation(location_id=location_id):
            in_use = any(key.uses_location(location_id) for key in _keys_of(org, uow))
            org.remove_location(location_id, in_use, cause)
        case c.DefineRole(role_id=role_id, name=name, permissions=permissions):
            org.define_role(role_id, name, _permissions(permissions), cause)
        case c.ChangeRolePermissions(role_id=role_id, permissions=permissions):
            org.change_role_permissions(role_id, _permissions(permissions), cause)
        case c.RenameRole(role_id=role_id, name=name):
            org.rename_role(role_id, name, cause)
        case _:
            raise DomainError("invalid_command", f"{type(command).__name__} is not handled")


def remove_role(role_id: str, org: Organization, uow: UnitOfWork, cause: Cause) -> None:
    """The role leaves the organization and every key of it."""
    keys = _keys_of(org, uow)
    org.remove_role(role_id, cause)
    uow.touch(org)
    for key in keys:
        key.drop_removed_role(role_id, cause)
        uow.touch(key)


def handle_key_command(command: c.KeyCommand, uow: UnitOfWork, now: datetime) -> None:
    cause = Cause(command.command_id, command.actor_id)
    org = authorized_organization(command, uow)
    if isinstance(command, c.CreateApiKey):
        create_key(command, org, uow, cause)
        return
    key = existing_key(command, uow)
    apply_key_command(command, key, org, now, cause)
    uow.touch(key)


def authorized_organization(
    command: c.KeyCommand | c.ImportApiKeys, uow: UnitOfWork
) -> Organization:
    """The key's organization, whose rules let the actor manage keys."""
    org = uow.organization(command.organization_id)
    if org is None:
        raise DomainError("unknown_organization", f"no organization {command.organization_id!r}")
    org.require_key_manager(command.actor_id)
    return org


def create_key(command: c.CreateApiKey, org: Organization, uow: UnitOfWork, cause: Cause) -> None:
    require_new_key(command.key_id, uow)
    key = new_key(org, command, cause)
    org.register_key(command.key_id, cause)
    uow.touch(org, key)


def existing_key(command: c.KeyCommand, uow: UnitOfWork) -> ApiKey:
    key = uow.key(command.key_id)
    if key is None or key.organization_id != command.organization_id:
        raise DomainError("unknown_key", f"no key {command.key_id!r} in this organization")
    return key


def apply_key_command(
    command: c.KeyCommand, key: ApiKey, org: Organization, now: datetime, cause: Cause
) -> None:
    match command:
        case c.RenameApiKey(name=name):
            key.rename(name, cause)
        case c.AddKeyLocation(location_id=location_id):
            key.add_location(org, location_id, cause)
        case c.RemoveKeyLocation(location_id=location_id):
            key.remove_location(location_id, cause)
        case c.AddKeyRole(role_id=role_id):
            key.add_role(org, role_id, cause)
        case c.RemoveKeyRole(role_id=role_id):
            key.remove_role(role_id, cause)
        case c.ToggleRoleLocation(role_id=role_id, location_id=location_id, applies=applies):
            key.toggle_role_location(role_id, location_id, applies, cause)
        case c.RotateKeySecret(secret_sha256=sha, secret_hint=hint, grace_seconds=grace):
            key.rotate_secret(sha, hint, grace, now, cause)
        case c.DisableApiKey():
            key.disable(cause)
        case c.EnableApiKey():
            key.enable(cause)
        case c.DeleteApiKey():
            key.delete(cause)
        case _:
            raise DomainError("invalid_command", f"{type(command).__name__} is not handled")


def _keys_of(org: Organization, uow: UnitOfWork) -> list[ApiKey]:
    return [key for key_id in org.key_ids if (key := uow.key(key_id)) is not None]


def _permissions(permissions: list) -> list[list[str]]:
    return [[p.permission, p.scope] for p in permissions]
