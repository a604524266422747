"""Fencing tokens: which replica may write a partition's commands' events.

Each partition (named by its commands stream) has an epoch in the event store. A replica that
takes a partition's lease takes a new epoch (``take_epoch``: one more than the last, in a
transaction of its own), and every batch it stores carries ``Fence(partition, epoch)``: the
batch's transaction checks that the stored epoch is still its own, so once another replica
has taken the partition, a batch of the replica it replaced (paused past its lease, cut off
from Redis) is refused with ``Fenced`` and rolled back, whatever Redis says about leases.
"""

from __future__ import annotations

from dataclasses import dataclass

SQLITE_EPOCHS_TABLE = "partition_epochs"
POSTGRES_EPOCHS_SUFFIX = "_partition_epochs"  # after the application's name: apikeys_...


@dataclass(frozen=True)
class Fence:
    partition: str  # the partition's commands stream
    epoch: int


class Fenced(Exception):
    """The partition has a newer epoch: another replica took it over; nothing was stored."""

    def __init__(self, fence: Fence) -> None:
        super().__init__(
            f"partition {fence.partition}: epoch {fence.epoch} is no longer current "
            "(another replica took the partition over); the batch was not stored"
        )
        self.fence = fence
