"""Command builders for tests and benchmarks: plain JSON objects as an upstream would send."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

_ids = itertools.count(1)


def cid(prefix: str = "c") -> str:
    return f"{prefix}-{next(_ids)}"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def organization_setup(
    org: str, admin: str = "alice", locations: int = 3, roles: int = 2
) -> list[dict[str, Any]]:
    """Module on, one administrator, a chain of locations L0 > L1 > ..., and roles."""
    commands: list[dict[str, Any]] = [
        {"type": "EnableApiModule", "command_id": cid(), "organization_id": org},
        {
            "type": "GrantApiAdministrator",
            "command_id": cid(),
            "organization_id": org,
            "user_id": admin,
        },
    ]
    for i in range(locations):
        commands.append(
            {
                "type": "DefineLocation",
                "command_id": cid(),
                "organization_id": org,
                "location_id": f"L{i}",
                "name": f"Location {i}",
                "parent_id": f"L{i - 1}" if i else None,
            }
        )
    for i in range(roles):
        commands.append(
            {
                "type": "DefineRole",
                "command_id": cid(),
                "organization_id": org,
                "role_id": f"R{i}",
                "name": f"Role {i}",
                "permissions": [{"permission": f"perm{i}", "scope": "location_and_below"}],
            }
        )
    return commands


def create_key(
    org: str,
    key_id: str,
    admin: str = "alice",
    locations: tuple[str, ...] = ("L0", "L1"),
    roles: tuple[str, ...] = ("R0",),
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "CreateApiKey",
        "command_id": cid(),
        "organization_id": org,
        "actor_id": admin,
        "key_id": key_id,
        "name": f"Key {key_id}",
        "location_ids": list(locations),
        "role_ids": list(roles),
        "secret_sha256": sha(key_id),
        "secret_hint": "apk_...0000",
        **extra,
    }


def key_command(
    type_: str, org: str, key_id: str, admin: str = "alice", **fields: Any
) -> dict[str, Any]:
    return {
        "type": type_,
        "command_id": cid(),
        "organization_id": org,
        "actor_id": admin,
        "key_id": key_id,
        **fields,
    }


def many_organizations(organizations: int, total: int, keys: int = 40) -> list[dict[str, Any]]:
    """``total`` commands over ``organizations`` organizations: each one's directory commands,
    then keys created and renamed; interleaved across organizations, each organization's
    commands in their own order (every one of them is accepted when applied in order)."""
    per_org = total // organizations
    plans = []
    for o in range(organizations):
        org = f"org-{o}"
        plan = organization_setup(org)
        plan += [create_key(org, f"{org}-k{k}") for k in range(keys)]
        for n in range(per_org - len(plan)):
            plan.append(key_command("RenameApiKey", org, f"{org}-k{n % keys}", name=f"name {n}"))
        plans.append(plan)
    return [plan[i] for i in range(per_org) for plan in plans]
