"""The relay as a supervised child process: woken through a pipe after each stored batch,
restarted within a second when it exits, and ended when the keys service ends (the pipe's
end of file, and the kernel's parent-death signal, tell it so). ``RelayProcess`` is the
parent's side; ``run_relay_process`` is the child's entry point."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import time
from multiprocessing.process import BaseProcess
from typing import Any

from services.common import logs
from services.common.lifeline import die_with_parent
from services.common.redis_client import connect
from services.common.resilience import Backoff, Outage, Stopping, keep_trying
from services.keys.settings import KeysSettings
from services.keys.store import ApiKeysApplication
from services.keys.streams.relay import EventRelay

log = logging.getLogger(__name__)
CHECK_SECONDS = 0.2
# a relay that ran this long before exiting is restarted at once; sooner, with backoff
HEALTHY_RUN_SECONDS = 5.0


class RelayProcess:
    def __init__(self, settings: KeysSettings) -> None:
        self.settings = settings
        self.process: BaseProcess | None = None
        self._wake_fd: int | None = None
        self._started_at = 0.0
        self.restarts = 0

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        reader, writer = context.Pipe(duplex=False)
        settings = self.settings
        process = context.Process(
            target=run_relay_process,
            args=(
                settings.event_store,
                settings.redis_url,
                settings.events_stream,
                reader,
                settings.cache_size,
                settings.redis_cluster,
            ),
            name="apikeys-relay",
            daemon=False,
        )
        process.start()
        reader.close()
        fd = os.dup(writer.fileno())
        writer.close()
        os.set_blocking(fd, False)
        self._close_wake()
        self.process, self._wake_fd, self._started_at = process, fd, time.monotonic()

    def wake(self) -> None:
        """Tell the relay that events were stored (never blocks)."""
        if self._wake_fd is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(self._wake_fd, b"\0")

    async def supervise(self) -> None:
        """Restart the relay whenever it exits; run until cancelled. Woken by the process's
        sentinel (readable once it has exited), so an idle supervisor costs nothing."""
        backoff = Backoff(base=0.5, cap=10.0)
        while True:
            process = self.process
            if process is None:
                return
            await _exited(process)
            ran = time.monotonic() - self._started_at
            log.warning(
                "relay process exited (code %s) after %.1f s; restarting", process.exitcode, ran
            )
            if ran < HEALTHY_RUN_SECONDS:
                await asyncio.sleep(backoff.next_delay())
            else:
                backoff.reset()
            self.restarts += 1
            self.start()

    async def stop(self, timeout: float = 1.5) -> None:
        process = self.process
        self._close_wake()  # end of file: the relay finishes what it has and ends
        if process is None:
            return
        # waits on the process's sentinel: no thread that a blocked store call could hold up
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_exited(process), timeout)
        if process.is_alive():
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_exited(process), 1.0)
        if process.is_alive():
            process.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_exited(process), 1.0)
        self.process = None

    def _close_wake(self) -> None:
        if self._wake_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._wake_fd)
            self._wake_fd = None


async def _exited(process: BaseProcess) -> None:
    """Return once ``process`` has exited (and reap it)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    sentinel = process.sentinel

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(sentinel, readable)
    try:
        while process.is_alive():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), CHECK_SECONDS * 25)
    finally:
        loop.remove_reader(sentinel)


# --- the child ------------------------------------------------------------------------------


async def relay_forever(
    event_store: str,
    redis_url: str,
    stream: str,
    wake_fd: int,
    cache_size: int,
    cluster: bool = False,
) -> None:
    """The relay as a process of its own. The keys service writes a byte to ``wake_fd`` after
    each stored batch; end of file there means the keys service is gone, and so the relay
    ends too."""
    parent_gone = asyncio.Event()
    loop = asyncio.get_running_loop()
    os.set_blocking(wake_fd, False)
    try:  # a relay started during a store outage waits for the store
        app = await keep_trying(
            lambda: asyncio.to_thread(ApiKeysApplication, event_store),
            Outage("relay's event store", log),
            parent_gone.is_set,
            Backoff(cap=5.0),
        )
    except Stopping:
        return
    redis = connect(redis_url, cluster=cluster)
    relay = EventRelay(app, redis, stream, cache_size=cache_size)
    gc.collect()
    gc.freeze()  # start-up's objects out of the collector's full passes

    def readable() -> None:
        try:
            data = os.read(wake_fd, 4096)
        except BlockingIOError:
            return
        if not data:
            loop.remove_reader(wake_fd)
            parent_gone.set()
        relay.wake.set()

    loop.add_reader(wake_fd, readable)
    try:
        await relay.run(IDLE_POLL_SECONDS, alive=lambda: not parent_gone.is_set())
    finally:
        await redis.aclose()
        app.close()


RELAY_NICENESS = 5
# how often an idle relay looks at the store without being woken (another writer's events)
IDLE_POLL_SECONDS = 1.0


def run_relay_process(
    event_store: str,
    redis_url: str,
    stream: str,
    wake: Any,
    cache_size: int,
    cluster: bool = False,
) -> None:
    """Entry point of the relay process (``wake``: the read end of the wake-up pipe)."""
    die_with_parent()
    logs.configure()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the relay stops
    # The command path comes first when both cores are busy: the relay is a follower whose
    # lag drains as soon as there is room.
    os.nice(RELAY_NICENESS)
    fd = wake.fileno()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(relay_forever(event_store, redis_url, stream, fd, cache_size, cluster))
