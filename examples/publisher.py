"""Publisher: set up an organization, create a key, and read what it may do.

    REDIS_URL=redis://127.0.0.1:6380/0 python examples/publisher.py acme

Prints one JSON object: the key id, its token (shown once: only its hash was sent) and the check.
"""

import asyncio
import json
import sys

from client import ApiKeysClient


async def main(organization: str) -> None:
    async with ApiKeysClient() as client:  # settings from the environment
        await client.enable_api_module(organization, raise_on_reject=True)
        await client.grant_api_administrator(organization, "alice", raise_on_reject=True)
        await client.define_location(organization, "plant-7", "Plant 7")
        await client.define_role(
            organization, "exporter", "Exporter", [("view_private", "location_and_below")]
        )
        key = await client.create_key(
            organization, "alice", "Nightly export", ["plant-7"], ["exporter"],
            raise_on_reject=True,
        )  # fmt: skip
        check = await client.check(
            key.key_id, "view_private", "plant-7", min_position=key.result.position
        )
        print(json.dumps({"key_id": key.key_id, "token": key.token, "allowed": check.allowed}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "acme"))
