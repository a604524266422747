"""Which commands stream an organization's commands go to.

With N partitions (N > 1) an organization's commands go to ``<commands stream>.<p>`` where
``p = zlib.crc32(organization_id as UTF-8) % N``; with one, to the commands stream itself. The
keys service publishes N under the Redis key ``PARTITIONS_KEY``.
"""

from __future__ import annotations

import zlib

PARTITIONS_KEY = "apikeys.partitions"


def partition_of(organization_id: str, partitions: int) -> int:
    return zlib.crc32(organization_id.encode()) % partitions


def commands_stream_for(commands_stream: str, organization_id: str, partitions: int) -> str:
    if partitions <= 1:
        return commands_stream
    return f"{commands_stream}.{partition_of(organization_id, partitions)}"
