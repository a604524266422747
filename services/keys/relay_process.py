"""The relay as a supervised child process: woken through a pipe after each stored batch,
restarted within a second when it exits, and ended when the keys service ends (the pipe's
end of file, and the kernel's parent-death signal, tell it so)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from multiprocessing.process import BaseProcess

from services.common.resilience import Backoff
from services.keys.relay import run_relay_process
from services.keys.settings import KeysSettings

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
            args=(settings.event_store, settings.redis_url, settings.events_stream, reader),
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
