"""``ApiKeysClient``: publishing, subscribing and querying behind one object.

async with ApiKeysClient(ClientSettings.from_env()) as client:
    created = await client.create_key("acme", "alice", "Nightly export", ["plant-7"], ["exporter"])
    answer = await client.check(created.key_id, "view_private", "plant-7",
                                min_position=created.result.position)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpx
from redis.asyncio import Redis

from client.commands import KeyCommandHelpers
from client.connection import connect
from client.publisher import Publisher
from client.queries import QueryMethods, new_http_client
from client.settings import ClientSettings
from client.subscriber import Subscriber
from contracts.commands import Command
from contracts.events import AnyEvent
from contracts.results import CommandResult


class ApiKeysClient(KeyCommandHelpers, QueryMethods):
    def __init__(self, settings: ClientSettings | None = None, **overrides: Any) -> None:
        """Settings from ``settings`` (default: the environment), with keyword overrides,
        e.g. ``ApiKeysClient(redis_url=..., projection_url=...)``."""
        base = settings or ClientSettings.from_env()
        self.settings = ClientSettings(**{**base.__dict__, **overrides}) if overrides else base
        self._redis: Redis | None = None
        self._publisher: Publisher | None = None
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> ApiKeysClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._publisher is not None:
            await self._publisher.close()
            self._publisher = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = connect(self.settings.redis_url, cluster=self.settings.redis_cluster)
        return self._redis

    @property
    def http(self) -> httpx.AsyncClient:
        """The pooled HTTP client of the queries (``check``, ``verify``, ``permissions``,
        ``keys_with_permission``, ``history``)."""
        if self._http is None:
            self._http = new_http_client(self.settings)
        return self._http

    async def publisher(self) -> Publisher:
        """The publisher, started on first use: it checks the partitions and starts the one
        reader of the results stream."""
        if self._publisher is None:
            publisher = Publisher(self.redis, self.settings)
            await publisher.start()
            self._publisher = publisher
        return self._publisher

    async def send(
        self,
        command: Command,
        *,
        timeout: float | None = None,
        resends: int | None = None,
        raise_on_reject: bool = False,
    ) -> CommandResult:
        """Publish a command and wait for its result (see ``client.publisher``)."""
        publisher = await self.publisher()
        return await publisher.send(
            command, timeout=timeout, resends=resends, raise_on_reject=raise_on_reject
        )

    def events(self, after: int = 0, **options: Any) -> AsyncIterator[AnyEvent]:
        """Events after position ``after`` (see ``Subscriber.events``)."""
        return Subscriber(self.redis, self.settings.events_stream).events(after, **options)

    def group_events(self, group: str, consumer: str, **options: Any) -> AsyncIterator[AnyEvent]:
        """A consumer group's share of the events (see ``Subscriber.group_events``)."""
        subscriber = Subscriber(self.redis, self.settings.events_stream)
        return subscriber.group_events(group, consumer, **options)

    async def resume_group(self, group: str) -> None:
        """After a group's ``EventsMissing`` was caught up with (see the error's text): let
        its consumers read on from the first event after the gap."""
        await Subscriber(self.redis, self.settings.events_stream).resume_group(group)
