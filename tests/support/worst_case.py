"""The largest inputs within the limits, for the event-loop stall test and benchmark: an
organization at the most locations (names and ids at their longest), roles at the most
permissions, a key at the most locations and roles; and a probe measuring the event loop's
longest stall while some work runs on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from contracts import events as ev
from contracts.common import ID_MAX, MatrixCell
from services.keys.domain import rules
from tests.support.projection_builders import EventLog


@dataclass(frozen=True)
class Size:
    locations: int  # in the organization
    key_locations: int
    key_roles: int
    permissions: int  # per role
    id_length: int

    def location(self, i: int) -> str:
        return f"L{i}-".ljust(self.id_length, "x")

    def role(self, i: int) -> str:
        return f"R{i}-".ljust(self.id_length, "x")


LARGEST = Size(
    locations=rules.LOCATIONS_PER_ORGANIZATION,
    key_locations=rules.LOCATIONS_PER_KEY,
    key_roles=rules.ROLES_PER_KEY,
    permissions=rules.PERMISSIONS_PER_ROLE,
    id_length=ID_MAX,
)
TYPICAL = Size(locations=200, key_locations=3, key_roles=2, permissions=20, id_length=36)


def organization(size: Size, log: EventLog | None = None) -> EventLog:
    """A tree ten wide at every level (so that locations near the root hold most of it), and
    ``key_roles`` roles of ``permissions`` permissions, half of them ``location_and_below``."""
    log = log or EventLog().setup()
    name = "n" * rules.MAX_NAME
    log.location(size.location(0))
    for i in range(1, size.locations):
        log.location(size.location(i), size.location((i - 1) // 10), name)
    for r in range(size.key_roles):
        perms = [
            (permission(p), "location_and_below" if p % 2 else "location_only")
            for p in range(size.permissions)
        ]
        log.role(size.role(r), *perms)
    return log


def permission(p: int) -> str:
    return f"perm-{p}-".ljust(40, "x")


def key_locations(size: Size) -> list[str]:
    """The key's locations: the root and the locations nearest it."""
    return [size.location(i) for i in range(size.key_locations)]


def key_roles(size: Size) -> list[str]:
    return [size.role(r) for r in range(size.key_roles)]


def create_key(log: EventLog, size: Size, key_id: str) -> ev.ApiKeyCreated:
    """A key at the size's locations and roles, its matrix whole (every cell listed, as the
    relay publishes it)."""
    locations, roles = key_locations(size), key_roles(size)
    matrix = [MatrixCell(r, loc, True) for r in roles for loc in locations]
    event: ev.ApiKeyCreated = log.key(
        ev.ApiKeyCreated,
        key_id,
        name=key_id,
        location_ids=locations,
        role_ids=roles,
        matrix=matrix,
    )
    return event


class LoopProbe:
    """Wakes every millisecond and keeps the longest gap between two wake-ups."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.longest = 0.0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(self.interval)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    async def measure(self, work: Callable[[], Awaitable[object]]) -> tuple[float, float]:
        """(the longest stall, the work's own time), in seconds."""
        self.task = asyncio.create_task(self._run())
        await asyncio.sleep(0.005)  # the probe is running
        self.longest = 0.0
        started = time.perf_counter()
        await work()
        took = time.perf_counter() - started
        await asyncio.sleep(0.005)  # the gap that ends after the work is counted
        self.task.cancel()
        return self.longest, took
