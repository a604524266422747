"""Who may ask: the callers of the query API, from ``APIKEYS_CALLERS_FILE``, re-read when the
file changes (a malformed file keeps the last good one, and the log says so).

A request is authenticated by one dict lookup: the SHA-256 of the token it presents. Only the
hashes are held; tokens are hashed at once and never kept or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contracts.callers import ALL_ORGANIZATIONS, MAX_CALLERS_FILE_BYTES, decode_callers

log = logging.getLogger("apikeys.callers")
# how often the file's size and modification time are looked at
WATCH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Caller:
    name: str
    scopes: frozenset[str]
    # None: every organization
    organizations: frozenset[str] | None

    def sees(self, organization_id: str) -> bool:
        return self.organizations is None or organization_id in self.organizations


class CallersFileError(Exception):
    """The callers file cannot be read or is not a valid list of callers."""


def read_callers(path: Path) -> dict[str, Caller]:
    """The callers of the file by the SHA-256 of their tokens (blocking: reads the file)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CALLERS_FILE_BYTES + 1)
        entries = decode_callers(data)
    except (OSError, ValueError) as error:
        raise CallersFileError(f"APIKEYS_CALLERS_FILE {path}: {error}") from error
    return {
        entry.secret_sha256: Caller(
            entry.name,
            frozenset(entry.scopes),
            None if entry.organizations == [ALL_ORGANIZATIONS] else frozenset(entry.organizations),
        )
        for entry in entries
    }


class Callers:
    """The callers in force; ``by_hash`` is replaced whole on a reload, never changed."""

    def __init__(self, by_hash: dict[str, Caller]) -> None:
        self.by_hash = by_hash

    def authenticate(self, token: bytes) -> Caller | None:
        return self.by_hash.get(hashlib.sha256(token).hexdigest())


def _signature(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class CallersFile:
    """The file behind ``callers``: read at start (a bad file then stops the start), then
    looked at once a second, off the request path, and re-read when it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.callers = Callers(read_callers(path))
        self.seen = self._stat()
        log.info("%d callers from APIKEYS_CALLERS_FILE %s", len(self.callers.by_hash), path)

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            return _signature(self.path.stat())
        except OSError:
            return None

    def changed(self) -> bool:
        """Whether the file looks different since it was last read (cheap: one stat)."""
        return self._stat() != self.seen

    def reload(self) -> None:
        """Read the file again (blocking); keep the last good callers if it is not good."""
        self.seen = self._stat()
        try:
            by_hash = read_callers(self.path)
        except CallersFileError as error:
            log.error("%s; keeping the last good callers (%d)", error, len(self.callers.by_hash))
            return
        self.callers.by_hash = by_hash
        log.info("APIKEYS_CALLERS_FILE %s re-read: %d callers", self.path, len(by_hash))

    async def watch(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Re-read the file whenever it changes, until ``stop()`` says so (or cancelled)."""
        while not stop():
            await asyncio.sleep(WATCH_SECONDS)
            if self.changed():
                await asyncio.to_thread(self.reload)
