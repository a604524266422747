"""FastStream at the edge: the consumer-group subscriber that hands raw batches to the
CommandConsumer, and the broker's logging folded into one line per outage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from faststream.middlewares import AckPolicy
from faststream.redis import RedisBroker, RedisClusterBroker, StreamSub
from faststream.redis.annotations import RedisBatchStreamMessage
from redis import exceptions as redis_errors

from services.common.redis_client import (
    cluster_nodes,
    find_stream_keys_locally,
    retry,
)
from services.common.resilience import Outage, is_transient
from services.keys.settings import KeysSettings
from services.keys.streams.consumer import CommandConsumer

# the broker waits this long for the batch in hand when stopping (SIGTERM allows 10 s in all)
GRACEFUL_SECONDS = 4.0
SUBSCRIBER_RETRIES = 8


async def keep_raw(message: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """Skip FastStream's body decoding (it fails on bytes that are not UTF-8): entries are
    read from the raw batch by `read_entry`, which dead-letters what is not a command."""
    parsed = await original({**message, "data": []})
    parsed.raw_message = message
    return parsed


class FetchErrors(logging.Filter):
    """FastStream logs every failed read during an outage (one every 5 s, with a traceback):
    those become one line when the outage starts and one when it ends."""

    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncio.CancelledError):
            return False  # a batch held through an outage, given up at stop: still pending
        if error is not None and is_transient(error):
            self.outage.failed(error)
            return False
        return True


def new_broker(url: str, logger: logging.Logger, *, cluster: bool = False) -> RedisBroker:
    options: dict[str, Any] = {
        "logger": logger,
        "graceful_timeout": GRACEFUL_SECONDS,
        # the subscriber sleeps 5 s after a read that fails (FastStream's fixed back-off), so
        # its reads ride out a short outage (a Redis restart) in redis-py's retry instead
        "retry": retry(SUBSCRIBER_RETRIES),
        "retry_on_error": [redis_errors.ConnectionError, redis_errors.TimeoutError],
        "health_check_interval": 15,
        "socket_connect_timeout": 2,
        "socket_keepalive": True,
    }
    # a cluster: the URL names one or more nodes, the others are discovered; a stream is one
    # key, so the group's reads and acknowledgements go to the one node that holds its slot
    if cluster:
        first, nodes = cluster_nodes(url)
        return RedisClusterBroker(first, startup_nodes=nodes, **options)
    return RedisBroker(url, **options)


async def start_broker(broker: RedisBroker) -> None:
    """Connect, then start reading. A cluster client (FastStream makes its own) routes the
    subscriber's XREADGROUP by the stream's key, not through one node that may die
    (``redis_client.StreamKeysParser``)."""
    find_stream_keys_locally(await broker.connect())
    await broker.start()


def build_broker(settings: KeysSettings, consumer: CommandConsumer, outage: Outage) -> RedisBroker:
    quiet = logging.getLogger("apikeys.keys.broker")
    quiet.setLevel(logging.WARNING)
    quiet.addFilter(FetchErrors(outage))
    broker = new_broker(settings.redis_url, quiet, cluster=settings.redis_cluster)
    source = StreamSub(
        settings.commands_stream,
        group=settings.group,
        consumer=settings.consumer,
        batch=True,
        max_records=settings.batch_size,
        polling_interval=1000,
    )

    @broker.subscriber(
        stream=source, ack_policy=AckPolicy.MANUAL, include_in_schema=False, parser=keep_raw
    )
    async def on_commands(message: RedisBatchStreamMessage) -> None:
        raw = message.raw_message
        await consumer.on_batch(raw["message_ids"], raw["data"])
        outage.succeeded()

    return broker
