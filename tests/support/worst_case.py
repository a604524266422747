"""The largest inputs within the limits, for the event-loop stall test and benchmark: an
organization at the most locations (names and ids at their longest), roles at the most
permissions, a key at the most locations and roles; and a probe measuring the event loop's
longest stall while some work runs on it (also while ``/v1/keys/{id}/permissions`` is paged
through, in process, the way the HTTP server runs it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import httpx

from contracts import events as ev
from contracts.common import ID_MAX, MatrixCell
from services.keys.domain import rules
from services.projections.http.app import create_app
from services.projections.model.state import ReadModel
from services.projections.runtime.live import LiveReadModel
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


class Stall(NamedTuple):
    longest: float  # seconds of wall-clock time between two turns of the loop
    took: float  # seconds the work took in all
    cpu: float  # seconds of the loop thread's CPU time in its longest gap


class LoopProbe:
    """Wakes every millisecond and keeps the longest gap between two wake-ups, in wall-clock
    time and in the CPU time of the loop's thread (on a loaded machine a gap also holds other
    processes' turns and other threads' turns at the GIL; its CPU time is the loop's own
    work)."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.longest = 0.0
        self.longest_cpu = 0.0
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while True:
            await asyncio.sleep(self.interval)
            now, now_cpu = time.perf_counter(), time.thread_time()
            self.longest = max(self.longest, now - last)
            self.longest_cpu = max(self.longest_cpu, now_cpu - last_cpu)
            last, last_cpu = now, now_cpu

    async def measure(self, work: Callable[[], Awaitable[object]]) -> Stall:
        """The longest stall, the work's own time and the stall's CPU time, in seconds."""
        self.task = asyncio.create_task(self._run())
        await asyncio.sleep(0.005)  # the probe is running
        self.longest = self.longest_cpu = 0.0
        started = time.perf_counter()
        await work()
        took = time.perf_counter() - started
        await asyncio.sleep(0.005)  # the gap that ends after the work is counted
        self.task.cancel()
        return Stall(self.longest, took, self.longest_cpu)


@dataclass
class Pages:
    """``/v1/keys/{id}/permissions`` paged through: the longest loop stall over the requests,
    the largest page, and the totals."""

    pages: int = 0
    entries: int = 0
    biggest: int = 0  # bytes
    total: int = 0  # bytes
    stall: float = 0.0  # seconds
    took: float = 0.0  # seconds, every page
    cpu: float = 0.0  # seconds of CPU time in the longest gap


async def permission_pages(
    model: ReadModel, key_id: str, now: datetime, max_pages: int = 1_000_000
) -> Pages:
    """Follow the key's pages from the first (at most ``max_pages``) through the HTTP app on
    this loop, with a probe on the same loop."""
    app = create_app(LiveReadModel(model), clock=lambda: now)
    found = Pages()
    url: str | None = f"/v1/keys/{key_id}/permissions"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/health")).status_code == 200  # the app's first request set up
        while url is not None and found.pages < max_pages:
            got: list[httpx.Response] = []

            async def fetch(path: str = url, got: list[httpx.Response] = got) -> None:
                got.append(await http.get(path))

            stall, took, cpu = await LoopProbe().measure(fetch)
            (response,) = got
            assert response.status_code == 200, response.text[:200]
            found.pages += 1
            found.biggest = max(found.biggest, len(response.content))
            found.total += len(response.content)
            found.stall, found.took = max(found.stall, stall), found.took + took
            found.cpu = max(found.cpu, cpu)
            answer = response.json()
            found.entries += sum(len(loc["permissions"]) for loc in answer["locations"])
            cursor = answer["next_cursor"]
            url = None if cursor is None else f"/v1/keys/{key_id}/permissions?cursor={cursor}"
    return found
