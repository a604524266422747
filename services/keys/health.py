"""``GET /health`` (the process is alive and its event loop answers) and ``GET /ready`` (it can
do its job now), answered from state that a monitor task keeps; a request never waits on I/O.

Ready means: the event store and Redis answer, and no event stored more than
``max_relay_lag_seconds`` ago is still unpublished (whoever publishes it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from services.common import metrics
from services.common.lag import LagTracker, parse_watermark, watermark_key
from services.common.resilience import Outage, Probe
from services.keys.store import ApiKeysApplication
from services.keys.streams.relay import stream_top_position

log = logging.getLogger(__name__)
PROBE_SECONDS = 1.0
STORE_PROBE_TIMEOUT = 2.0
REDIS_PROBE_TIMEOUT = 2.0


@dataclass
class Readiness:
    started: bool = False
    store: Outage = field(default_factory=lambda: Outage("event store (probe)", log))
    redis: Outage = field(default_factory=lambda: Outage("Redis (probe)", log))
    # the consumer's own views: down while a batch in hand waits for the store or Redis
    store_users: list[Outage] = field(default_factory=list)
    redis_users: list[Outage] = field(default_factory=list)
    lag: LagTracker = field(default_factory=LagTracker)
    published_position: int = 0
    relay_lag_seconds: float = 0.0
    max_relay_lag_seconds: float = 10.0

    def reason(self) -> str | None:
        if not self.started:
            return "starting"
        if any(o.is_down for o in (self.store, *self.store_users)):
            return "event store unreachable"
        if any(o.is_down for o in (self.redis, *self.redis_users)):
            return "redis unreachable"
        if self.relay_lag_seconds > self.max_relay_lag_seconds:
            return f"stored events unpublished for {self.relay_lag_seconds:.1f} s"
        return None

    def answer(self) -> tuple[int, dict[str, Any]]:
        reason = self.reason()
        return (200 if reason is None else 503), {
            "status": "ready" if reason is None else "not_ready",
            "stored_position": self.lag.stored_position,
            "published_position": self.published_position,
            "reason": reason,
        }


def health_app(readiness: Readiness) -> Any:
    """A minimal ASGI app: /health and /ready, nothing else."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/health":
            code, body = 200, {"status": "ok", "service": "keys"}
        elif path == "/ready":
            code, body = readiness.answer()
        elif path == "/metrics":
            await _send_metrics(send, readiness)
            return
        else:
            code, body = 404, {"error": "not found"}
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return app


async def _send_metrics(send: Any, readiness: Readiness) -> None:
    stored = readiness.lag.stored_position or 0
    metrics.relay_lag.set(max(0, stored - readiness.published_position))
    metrics.relay_lag_seconds.set(readiness.relay_lag_seconds)
    body, content_type = metrics.exposition()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type.encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def monitor(
    readiness: Readiness, app: ApiKeysApplication, redis: Redis, events_stream: str
) -> None:
    """Probe the store and Redis every PROBE_SECONDS until cancelled."""
    store_probe = Probe(app.recorder.max_notification_id, readiness.store, STORE_PROBE_TIMEOUT)
    while True:
        store_probe.tick()
        await _probe_redis(readiness, redis, events_stream)
        await asyncio.sleep(PROBE_SECONDS)


async def _probe_redis(readiness: Readiness, redis: Redis, events_stream: str) -> None:
    try:
        async with asyncio.timeout(REDIS_PROBE_TIMEOUT):  # a silent link is not "fine"
            watermark = parse_watermark(await redis.hgetall(watermark_key(events_stream)))
            readiness.published_position = await stream_top_position(redis, events_stream)
        readiness.redis.succeeded()
    except Exception as error:  # whatever it is (an ACL refusal too), Redis is not usable
        readiness.redis.failed(error)
        return
    if watermark is not None:
        readiness.lag.observe(*watermark)
    readiness.relay_lag_seconds = readiness.lag.lag_seconds(
        readiness.published_position, time.time()
    )
