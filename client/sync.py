"""A synchronous client for scripts: the same methods as ``ApiKeysClient``, each run to its end
on an event loop of its own in a background thread.

    with SyncClient(redis_url="redis://127.0.0.1:6380/0") as client:
        created = client.create_key("acme", "alice", "Nightly export", ["plant-7"])
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from client.api import ApiKeysClient
from client.settings import ClientSettings


class SyncClient:
    def __init__(self, settings: ClientSettings | None = None, **overrides: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="apikeys-client", daemon=True
        )
        self._thread.start()
        self._client = ApiKeysClient(settings, **overrides)

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._client, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(method):
            raise AttributeError(f"SyncClient has no {name!r} (events need the async client)")

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(method(*args, **kwargs), self._loop).result()

        return call
