"""The keys service's part of worst_case_inputs.py: the consumer decodes each entry on its loop
and runs the processor in a worker thread; the loop is probed meanwhile."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

from services.keys.processor import CommandProcessor, Entry
from services.keys.store import ApiKeysApplication
from services.keys.streams.intake import Refused, read_entry
from tests.support.worst_case import LoopProbe, Size, Stall, key_locations, key_roles, permission

ORG = "org-worst"
_ids = itertools.count(1)


def command(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "command_id": f"c{next(_ids)}", "organization_id": ORG, **fields}


def key_command(type_: str, key_id: str, **fields: Any) -> dict[str, Any]:
    return command(type_, actor_id="alice", key_id=key_id, **fields)


def setup_commands(size: Size) -> list[dict[str, Any]]:
    name = "n" * 100
    out = [command("EnableApiModule"), command("GrantApiAdministrator", user_id="alice")]
    out.append(command("DefineLocation", location_id=size.location(0), name=name, parent_id=None))
    for i in range(1, size.locations):
        parent = size.location((i - 1) // 10)
        out.append(
            command("DefineLocation", location_id=size.location(i), name=name, parent_id=parent)
        )
    for r in range(size.key_roles):
        perms = [
            {"permission": permission(p), "scope": "location_and_below"}
            for p in range(size.permissions)
        ]
        out.append(command("DefineRole", role_id=size.role(r), name=name, permissions=perms))
    return out


class Keys:
    def __init__(self, db: Path) -> None:
        self.app = ApiKeysApplication(f"sqlite:///{db}")
        self.processor = CommandProcessor(self.app)
        self.entries = itertools.count(1)

    def entry(self, body: dict[str, Any]) -> tuple[str, dict[bytes, bytes]]:
        return f"{next(self.entries)}-0", {b"__data__": json.dumps(body).encode()}

    def run(self, *bodies: dict[str, Any]) -> None:
        entries = []
        for body in bodies:
            entry_id, fields = self.entry(body)
            parsed = read_entry(entry_id, fields, "apikeys.commands")
            assert not isinstance(parsed, Refused), parsed
            entries.append(Entry(entry_id, parsed))
        for result in self.processor.process(entries):
            assert result.status == "accepted", result

    async def measured(self, body: dict[str, Any]) -> Stall:
        entry_id, fields = self.entry(body)

        async def handle() -> None:
            parsed = read_entry(entry_id, fields, "apikeys.commands")  # on the loop
            assert not isinstance(parsed, Refused), parsed
            await asyncio.sleep(0)
            (result,) = await asyncio.to_thread(self.processor.process, [Entry(entry_id, parsed)])
            assert result.status == "accepted", result

        return await LoopProbe().measure(handle)


async def keys_rows(size: Size, db: Path) -> dict[str, Stall]:
    keys = Keys(db)
    try:
        setup = setup_commands(size)
        for start in range(0, len(setup), 500):
            keys.run(*setup[start : start + 500])
        out: dict[str, Stall] = {}
        create = key_command(
            "CreateApiKey",
            "key-largest",
            name="largest",
            location_ids=key_locations(size),
            role_ids=key_roles(size),
            secret_sha256="a" * 64,
        )
        out["key at the most locations and roles: created"] = await keys.measured(create)
        rename = key_command("RenameApiKey", "key-largest", name="renamed")
        out["... renamed"] = await keys.measured(rename)
        perms = [{"permission": f"new-{p}", "scope": "everywhere"} for p in range(size.permissions)]
        change = command("ChangeRolePermissions", role_id=size.role(0), permissions=perms)
        out["role at the most permissions changed"] = await keys.measured(change)
        move = command("MoveLocation", location_id=size.location(1), new_parent_id=size.location(2))
        out["organization at the most locations: location moved"] = await keys.measured(move)
        return out
    finally:
        keys.app.close()
