"""Which commands stream an organization's commands go to.

With ``partitions`` = 1 every command goes to the commands stream itself (``apikeys.commands``);
with N > 1 partitions, an organization's commands go to ``<commands stream>.<p>`` where
``p = zlib.crc32(organization_id encoded as UTF-8) % N``. Every publisher computes the same
partition, so an organization's commands keep their order within one stream. The keys
service publishes N in Redis under ``PARTITIONS_KEY``; a publisher reads it there and refuses
to publish when it disagrees with its own setting.
"""

from __future__ import annotations

import zlib

PARTITIONS_KEY = "apikeys.partitions"


def partition_of(organization_id: str, partitions: int) -> int:
    """The partition of an organization: crc32 of its id's UTF-8 bytes, modulo N."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    return zlib.crc32(organization_id.encode("utf-8")) % partitions


def partition_stream(commands_stream: str, partition: int, partitions: int) -> str:
    """The stream of one partition (the commands stream itself when there is one)."""
    return commands_stream if partitions == 1 else f"{commands_stream}.{partition}"


def partition_streams(commands_stream: str, partitions: int) -> list[str]:
    """Every partition's stream, partition 0 first."""
    return [partition_stream(commands_stream, p, partitions) for p in range(partitions)]


def commands_stream_for(organization_id: str, commands_stream: str, partitions: int) -> str:
    """Where a command of ``organization_id`` is added."""
    return partition_stream(commands_stream, partition_of(organization_id, partitions), partitions)
