"""A typed helper per command: builds the contract struct, sends it, returns its result.

Every helper takes the same keyword options as ``send`` (``command_id``, ``timeout``,
``resends``, ``raise_on_reject``). ``create_key`` and ``rotate_secret`` make the token here,
send only its SHA-256 and hint, and return the token with the result (it is shown nowhere else).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import TypedDict, Unpack

import msgspec

from contracts import commands as c
from contracts.common import Permission, RoleLocation, Scope
from contracts.results import CommandResult
from contracts.tokens import PREFIX, new_token, token_hint, token_sha256

PermissionLike = Permission | tuple[str, Scope]


class Options(TypedDict, total=False):
    command_id: str
    timeout: float
    resends: int
    raise_on_reject: bool


class NewSecret(msgspec.Struct, kw_only=True):
    """A command's result and the token it made: valid once ``result.status`` is accepted."""

    result: CommandResult
    key_id: str
    token: str

    @property
    def accepted(self) -> bool:
        return self.result.status == "accepted"


def _permissions(permissions: Iterable[PermissionLike]) -> list[Permission]:
    return [p if isinstance(p, Permission) else Permission(p[0], p[1]) for p in permissions]


class CommandHelpers:
    async def send(
        self,
        command: c.Command,
        *,
        timeout: float | None = None,
        resends: int | None = None,
        raise_on_reject: bool = False,
    ) -> CommandResult:
        raise NotImplementedError

    async def _run(self, command: c.Command, options: Options) -> CommandResult:
        return await self.send(
            command,
            timeout=options.get("timeout"),
            resends=options.get("resends"),
            raise_on_reject=options.get("raise_on_reject", False),
        )

    # --- directory ---------------------------------------------------------------------------

    async def enable_api_module(self, organization_id: str, **o: Unpack[Options]) -> CommandResult:
        return await self._run(c.EnableApiModule(**_ids(organization_id, o)), o)

    async def disable_api_module(self, organization_id: str, **o: Unpack[Options]) -> CommandResult:
        return await self._run(c.DisableApiModule(**_ids(organization_id, o)), o)

    async def grant_api_administrator(
        self, organization_id: str, user_id: str, **o: Unpack[Options]
    ) -> CommandResult:
        command = c.GrantApiAdministrator(**_ids(organization_id, o), user_id=user_id)
        return await self._run(command, o)

    async def revoke_api_administrator(
        self, organization_id: str, user_id: str, **o: Unpack[Options]
    ) -> CommandResult:
        command = c.RevokeApiAdministrator(**_ids(organization_id, o), user_id=user_id)
        return await self._run(command, o)

    async def define_location(
        self,
        organization_id: str,
        location_id: str,
        name: str,
        parent_id: str | None = None,
        **o: Unpack[Options],
    ) -> CommandResult:
        command = c.DefineLocation(
            **_ids(organization_id, o), location_id=location_id, name=name, parent_id=parent_id
        )
        return await self._run(command, o)

    async def rename_location(
        self, organization_id: str, location_id: str, name: str, **o: Unpack[Options]
    ) -> CommandResult:
        command = c.RenameLocation(**_ids(organization_id, o), location_id=location_id, name=name)
        return await self._run(command, o)

    async def move_location(
        self,
        organization_id: str,
        location_id: str,
        new_parent_id: str | None,
        **o: Unpack[Options],
    ) -> CommandResult:
        command = c.MoveLocation(
            **_ids(organization_id, o), location_id=location_id, new_parent_id=new_parent_id
        )
        return await self._run(command, o)

    async def remove_location(
        self, organization_id: str, location_id: str, **o: Unpack[Options]
    ) -> CommandResult:
        command = c.RemoveLocation(**_ids(organization_id, o), location_id=location_id)
        return await self._run(command, o)

    async def define_role(
        self,
        organization_id: str,
        role_id: str,
        name: str,
        permissions: Iterable[PermissionLike] = (),
        **o: Unpack[Options],
    ) -> CommandResult:
        command = c.DefineRole(
            **_ids(organization_id, o),
            role_id=role_id,
            name=name,
            permissions=_permissions(permissions),
        )
        return await self._run(command, o)

    async def change_role_permissions(
        self,
        organization_id: str,
        role_id: str,
        permissions: Iterable[PermissionLike],
        **o: Unpack[Options],
    ) -> CommandResult:
        command = c.ChangeRolePermissions(
            **_ids(organization_id, o), role_id=role_id, permissions=_permissions(permissions)
        )
        return await self._run(command, o)

    async def rename_role(
        self, organization_id: str, role_id: str, name: str, **o: Unpack[Options]
    ) -> CommandResult:
        command = c.RenameRole(**_ids(organization_id, o), role_id=role_id, name=name)
        return await self._run(command, o)

    async def remove_role(
        self, organization_id: str, role_id: str, **o: Unpack[Options]
    ) -> CommandResult:
        return await self._run(c.RemoveRole(**_ids(organization_id, o), role_id=role_id), o)


def _ids(organization_id: str, options: Options) -> dict[str, str]:
    """The ids every command carries (an empty command_id is assigned by ``send``)."""
    return {"command_id": options.get("command_id", ""), "organization_id": organization_id}


def _key_ids(organization_id: str, actor_id: str, key_id: str, o: Options) -> dict[str, str]:
    return {**_ids(organization_id, o), "actor_id": actor_id, "key_id": key_id}


def new_key_id() -> str:
    return f"key-{uuid.uuid4().hex}"


class KeyCommandHelpers(CommandHelpers):
    async def create_key(
        self,
        organization_id: str,
        actor_id: str,
        name: str,
        location_ids: Iterable[str],
        role_ids: Iterable[str] = (),
        *,
        key_id: str | None = None,
        switched_off: Iterable[tuple[str, str]] = (),
        expires_at: datetime | None = None,
        token_prefix: str = PREFIX,
        **o: Unpack[Options],
    ) -> NewSecret:
        """Create a key with a token made here; ``switched_off``: (role_id, location_id)
        cells of the role x location matrix to switch off."""
        key_id = key_id or new_key_id()
        token = new_token(token_prefix)
        command = c.CreateApiKey(
            **_key_ids(organization_id, actor_id, key_id, o),
            name=name,
            location_ids=list(location_ids),
            role_ids=list(role_ids),
            role_locations=[RoleLocation(r, loc) for r, loc in switched_off],
            secret_sha256=token_sha256(token),
            secret_hint=token_hint(token),
            expires_at=expires_at,
        )
        return NewSecret(result=await self._run(command, o), key_id=key_id, token=token)

    async def rotate_secret(
        self,
        organization_id: str,
        actor_id: str,
        key_id: str,
        grace_seconds: int = 0,
        *,
        token_prefix: str = PREFIX,
        **o: Unpack[Options],
    ) -> NewSecret:
        """A new token for the key; the old one verifies ``grace_seconds`` longer."""
        token = new_token(token_prefix)
        command = c.RotateKeySecret(
            **_key_ids(organization_id, actor_id, key_id, o),
            secret_sha256=token_sha256(token),
            secret_hint=token_hint(token),
            grace_seconds=grace_seconds,
        )
        return NewSecret(result=await self._run(command, o), key_id=key_id, token=token)

    async def rename_key(
        self, organization_id: str, actor_id: str, key_id: str, name: str, **o: Unpack[Options]
    ) -> CommandResult:
        ids = _key_ids(organization_id, actor_id, key_id, o)
        return await self._run(c.RenameApiKey(**ids, name=name), o)

    async def add_key_location(
        self, organization_id: str, actor_id: str, key_id: str, location_id: str,
        **o: Unpack[Options],
    ) -> CommandResult:  # fmt: skip
        ids = _key_ids(organization_id, actor_id, key_id, o)
        return await self._run(c.AddKeyLocation(**ids, location_id=location_id), o)

    async def remove_key_location(
        self, organization_id: str, actor_id: str, key_id: str, location_id: str,
        **o: Unpack[Options],
    ) -> CommandResult:  # fmt: skip
        ids = _key_ids(organization_id, actor_id, key_id, o)
        return await self._run(c.RemoveKeyLocation(**ids, location_id=location_id), o)

    async def add_key_role(
        self, organization_id: str, actor_id: str, key_id: str, role_id: str,
        **o: Unpack[Options],
    ) -> CommandResult:  # fmt: skip
        ids = _key_ids(organization_id, actor_id, key_id, o)
        return await self._run(c.AddKeyRole(**ids, role_id=role_id), o)

    async def remove_key_role(
        self, organization_id: str, actor_id: str, key_id: str, role_id: str,
        **o: Unpack[Options],
    ) -> CommandResult:  # fmt: skip
        ids = _key_ids(organization_id, actor_id, key_id, o)
        return await self._run(c.RemoveKeyRole(**ids, role_id=role_id), o)

    async def toggle_role_location(
        self, organization_id: str, actor_id: str, key_id: str, role_id: str, location_id: str,
        applies: bool | None = None, **o: Unpack[Options],
    ) -> CommandResult:  # fmt: skip
        """Set a matrix cell (``applies`` true/false), or flip it (None)."""
        ids = _key_ids(organization_id, actor_id, key_id, o)
        command = c.ToggleRoleLocation(
            **ids, role_id=role_id, location_id=location_id, applies=applies
        )
        return await self._run(command, o)

    async def disable_key(
        self, organization_id: str, actor_id: str, key_id: str, **o: Unpack[Options]
    ) -> CommandResult:
        ids = _key_ids(organization_id, actor_id, key_id, o)
        return await self._run(c.DisableApiKey(**ids), o)

    async def enable_key(
        self, organization_id: str, actor_id: str, key_id: str, **o: Unpack[Options]
    ) -> CommandResult:
        ids = _key_ids(organization_id, actor_id, key_id, o)
        return await self._run(c.EnableApiKey(**ids), o)

    async def delete_key(
        self, organization_id: str, actor_id: str, key_id: str, **o: Unpack[Options]
    ) -> CommandResult:
        ids = _key_ids(organization_id, actor_id, key_id, o)
        return await self._run(c.DeleteApiKey(**ids), o)
