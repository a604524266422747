"""The demo organization of `apikeys run --demo`: the API module on, the development user as
API Administrator, a small location tree and three roles. Commands have fixed ids, so seeding
again changes nothing (each is answered ``duplicate``)."""

from __future__ import annotations

from client import ApiKeysClient
from contracts import commands as c
from contracts.common import Permission

DEMO_ORGANIZATION = "demo"
LOCATIONS = (  # (id, name, parent)
    ("hq", "Headquarters", None),
    ("north", "North Region", "hq"),
    ("plant-7", "Plant 7", "north"),
    ("line-1", "Line 1", "plant-7"),
    ("south", "South Region", "hq"),
    ("plant-9", "Plant 9", "south"),
)
ROLES = (  # (id, name, permissions)
    ("viewer", "Viewer", (("view", "location_and_below"),)),
    ("exporter", "Exporter", (("view_private", "location_and_below"), ("export", "location_only"))),
    ("editor", "Item Editor", (("edit", "own_items"), ("comment", "location_and_below"))),
)


def demo_commands(user: str, organization_id: str = DEMO_ORGANIZATION) -> list[c.Command]:
    org = organization_id
    out: list[c.Command] = [
        c.EnableApiModule(command_id=f"{org}-module", organization_id=org),
        c.GrantApiAdministrator(
            command_id=f"{org}-admin-{user}", organization_id=org, user_id=user
        ),
    ]
    out += [
        c.DefineLocation(
            command_id=f"{org}-location-{location_id}",
            organization_id=org,
            location_id=location_id,
            name=name,
            parent_id=parent,
        )
        for location_id, name, parent in LOCATIONS
    ]
    out += [
        c.DefineRole(
            command_id=f"{org}-role-{role_id}",
            organization_id=org,
            role_id=role_id,
            name=name,
            permissions=[Permission(p, s) for p, s in permissions],  # type: ignore[arg-type]
        )
        for role_id, name, permissions in ROLES
    ]
    return out


async def seed(client: ApiKeysClient, user: str, organization_id: str = DEMO_ORGANIZATION) -> int:
    """Send the demo's commands in order; the position of the last one."""
    position = 0
    for command in demo_commands(user, organization_id):
        result = await client.send(command)
        if result.status == "rejected":
            raise RuntimeError(f"demo: {command.command_id} rejected: {result.error}")
        position = max(position, result.position or 0)
    return position
