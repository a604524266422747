"""The number of partitions, agreed in Redis: the first replica writes it, every replica (and
every publisher) checks its own setting against it."""

from __future__ import annotations

from typing import Any


class PartitionsMismatch(Exception):
    """This replica's APIKEYS_PARTITIONS differs from the number agreed in Redis."""


async def agree_on_partitions(redis: Any, key: str, partitions: int) -> None:
    """Write ``partitions`` under ``key`` unless a number is there; raise
    ``PartitionsMismatch`` when the number there is another."""
    await redis.set(key, partitions, nx=True)
    agreed = await redis.get(key)
    if agreed is not None and int(agreed) != partitions:
        raise PartitionsMismatch(
            f"Redis key {key} says the commands are in {int(agreed)} partition(s), but this "
            f"keys service has APIKEYS_PARTITIONS={partitions}; refusing to start. To change "
            "the number of partitions, drain every partition first, then switch (README: "
            "Changing the number of partitions)."
        )
