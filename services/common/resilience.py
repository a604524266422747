"""Riding out outages: which errors are transient, bounded exponential backoff, and logging
each outage once (when it starts and when it ends), never once per retry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import sqlite3
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eventsourcing import persistence
from redis import exceptions as redis_errors

from services.common import collector, metrics

try:  # PostgreSQL support is optional at import time
    import psycopg
    import psycopg_pool

    _PSYCOPG: tuple[type[BaseException], ...] = (
        psycopg.OperationalError,
        psycopg.InterfaceError,
        psycopg_pool.PoolTimeout,
    )
except ImportError:  # pragma: no cover
    _PSYCOPG = ()

TRANSIENT: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    persistence.OperationalError,
    persistence.InterfaceError,
    sqlite3.OperationalError,
    ConnectionError,
    TimeoutError,
    OSError,
    *_PSYCOPG,
)

# A Redis Cluster mid-failover: the slot's primary is down or moving, not yet promoted or
# not yet known to this client; the client finds the new primary when asked again.
CLUSTER_TRANSIENT: tuple[type[BaseException], ...] = (
    redis_errors.ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
    redis_errors.TryAgainError,
    redis_errors.AskError,  # MOVED included: retries ran out while the slots moved
    redis_errors.ClusterError,  # "TTL exhausted": the same, within one command's redirects
    redis_errors.SlotNotCoveredError,
    redis_errors.ReadOnlyError,  # written to a primary that has just become a replica
)


# SQLSTATEs of a database that cannot do the work now but will: connection exceptions (08),
# a read-only primary mid-failover (25006), an operator intervention or shutdown (57P0x),
# serialization failures and deadlocks (40001, 40P01), a lock not available (55P03).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "57")
_TRANSIENT_SQLSTATES = frozenset({"25006", "40001", "40P01", "55P03"})


def _transient_sqlstate(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str) and (
            state[:2] in _TRANSIENT_SQLSTATE_CLASSES or state in _TRANSIENT_SQLSTATES
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_transient(error: BaseException) -> bool:
    """An error of the infrastructure (unreachable, dropped, timed out, busy, failing over),
    not of the work: retrying the same work later can succeed. ``IntegrityError`` is a
    conflict, not an outage."""
    if _transient_sqlstate(error):
        return True
    if isinstance(error, persistence.IntegrityError):
        return False
    if isinstance(error, CLUSTER_TRANSIENT):
        return True
    if isinstance(error, redis_errors.RedisClusterException):  # no known node answers
        return "cannot be connected" in str(error)
    if isinstance(error, redis_errors.ResponseError):
        return "LOADING" in str(error) or "MASTERDOWN" in str(error)
    return isinstance(error, TRANSIENT)


@dataclass
class Backoff:
    """Exponential delays with full jitter, capped: 0.05 s, 0.1 s, ... up to ``cap``."""

    base: float = 0.05
    cap: float = 2.0
    attempt: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 30)
        return random.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Outage:
    """The state of one dependency (Redis, a store): logs the start and the end of an outage
    once each, and tells since when it has been down."""

    name: str
    log: logging.Logger
    down_since: float | None = None
    last_ok: float = field(default_factory=time.monotonic)

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    def failed(self, error: BaseException) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            # the error's class and text only: connection URLs and passwords are not in them
            self.log.warning(
                "%s unreachable (%s: %s); retrying with backoff",
                self.name,
                type(error).__name__,
                _short(error),
            )

    def succeeded(self) -> None:
        self.last_ok = time.monotonic()
        if self.down_since is not None:
            self.log.warning(
                "%s reachable again after %.1f s", self.name, self.last_ok - self.down_since
            )
            self.down_since = None
            metrics.reconnects.labels(self.name.split(" (", 1)[0]).inc()


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return text[:200]


class Stopping(Exception):
    """The service is stopping while waiting out an outage: the work in hand is left undone
    (for the next start to do)."""


T = TypeVar("T")


async def keep_trying(
    call: Callable[[], Awaitable[T]],
    outage: Outage,
    stopping: Callable[[], bool],
    backoff: Backoff | None = None,
    stop: asyncio.Event | None = None,
) -> T:
    """``call()`` until it does not fail transiently (backoff in between, the outage logged
    once); raises ``Stopping`` if asked to stop meanwhile. Use it for idempotent calls only.

    With ``stop``, a call still waiting when it is set is abandoned at once (a blocking call
    in a thread runs on, and the process ends without waiting for it)."""
    backoff = backoff or Backoff(cap=2.0)
    while True:
        try:
            value = await (call() if stop is None else until_stopped(call(), stop))
            outage.succeeded()
            return value
        except Stopping:
            raise
        except Exception as error:
            if not is_transient(error):
                raise
            outage.failed(error)
        if stopping():
            raise Stopping
        delay = backoff.next_delay()
        with collector.resumed():  # an outage may last: its garbage is collected meanwhile
            if stop is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)


async def until_stopped(work: Awaitable[T], stop: asyncio.Event) -> T:
    """``work``'s result, or ``Stopping`` as soon as ``stop`` is set."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # neither is left running behind the cancelled caller
        task.cancel()
        raise
    finally:
        waiter.cancel()
    if task in done:
        return task.result()
    task.cancel()
    raise Stopping


# A task still running this long after its cancellation is cancelled again (see cancel_all).
CANCEL_REPEAT_SECONDS = 1.0


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait for each to end (whatever it ended with). A caller
    cancelled meanwhile is cancelled (its own cancellation is never taken for theirs).

    A task still running ``CANCEL_REPEAT_SECONDS`` after its cancellation is cancelled again:
    on Python 3.11, ``asyncio.wait_for`` returns normally when the cancellation arrives just as
    the call it waits for completes (CPython gh-86296, fixed in 3.12), and redis-py sends every
    command through ``wait_for`` when a socket timeout is set, so a loop reading Redis can
    swallow one cancellation and carry on for ever."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=CANCEL_REPEAT_SECONDS)
    for task in tasks:  # what each ended with is not the caller's concern: mark it seen
        if not task.cancelled():
            task.exception()


class Worker:
    """A thread of its own for one kind of blocking call (store writes, a probe), so that
    calls blocked on a silent connection never starve the loop's default executor, and a
    stop can tell whether one is still running."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.busy = 0
        WORKERS.add(self)

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        self.busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)
        finally:
            self.busy -= 1

    def release(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        WORKERS.discard(self)


WORKERS: weakref.WeakSet[Worker] = weakref.WeakSet()


async def finish_threads(seconds: float, log: logging.Logger) -> None:
    """Wait (bounded) for blocking calls still running in threads; if one is still blocked (a
    database call on a connection that went silent), end the process now instead of waiting
    for it at exit: whatever it had not committed is rolled back by the database, and the
    work in hand is still pending for the next start."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while any(worker.busy for worker in WORKERS) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if not any(worker.busy for worker in WORKERS):
        try:
            await asyncio.wait_for(
                loop.shutdown_default_executor(), max(0.1, deadline - loop.time())
            )
            for worker in list(WORKERS):
                worker.release()
            return
        except TimeoutError:
            pass
    log.warning("a blocked call did not finish within %.1f s; exiting without it", seconds)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class Probe:
    """A blocking health probe run in a thread, one at a time, every ``every`` seconds: its
    outcome goes to ``outage``; a probe that has not answered within ``timeout`` counts as a
    failure (the event loop never waits on it)."""

    def __init__(self, call: Callable[[], object], outage: Outage, timeout: float = 2.0) -> None:
        self.call = call
        self.outage = outage
        self.timeout = timeout
        self.worker = Worker("probe")
        self._running: asyncio.Future[object] | None = None
        self._started = 0.0

    def tick(self) -> None:
        """Collect the last probe's outcome and start the next one (call it periodically)."""
        running = self._running
        if running is None or running.done():
            if running is not None:
                error = running.exception()
                if error is None:
                    self.outage.succeeded()
                else:
                    self.outage.failed(error)
            self._running = asyncio.ensure_future(self.worker.run(self.call))
            self._started = time.monotonic()
        elif time.monotonic() - self._started > self.timeout:
            self.outage.failed(TimeoutError("no answer"))

    async def forever(self, every: float = 1.0) -> None:
        while True:
            self.tick()
            await asyncio.sleep(every)
