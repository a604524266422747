"""The keys service process: recover, then consume commands, relay events, answer /health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
from typing import Any

import uvicorn
from redis.asyncio import Redis

from services.keys.application import CommandProcessor
from services.keys.consumer import CommandConsumer, build_broker, ensure_group
from services.keys.event_store import ApiKeysApplication
from services.keys.relay import EventRelay, run_relay_process
from services.keys.settings import KeysSettings

log = logging.getLogger("apikeys.keys")


def health_app(status: dict[str, Any]) -> Any:
    """A minimal ASGI app: GET /health answers 200 once the service is consuming."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        ok = scope["path"] == "/health" and status.get("ready", False)
        code = 200 if ok else (503 if scope["path"] == "/health" else 404)
        body = json.dumps({**status, "status": "ok" if ok else "unavailable"}).encode()
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app


async def run_keys_service(settings: KeysSettings) -> None:
    app = ApiKeysApplication(settings.event_store)
    redis = Redis.from_url(settings.redis_url)
    relay = EventRelay(app, redis, settings.events_stream)
    processor = CommandProcessor(app)
    consumer = CommandConsumer(settings, processor, redis, on_stored=relay.wake.set)
    status: dict[str, Any] = {"service": "keys", "ready": False}
    host, _, port = settings.health_addr.rpartition(":")
    server = uvicorn.Server(
        uvicorn.Config(health_app(status), host=host, port=int(port), log_level="warning",
                       access_log=False, lifespan="on")
    )
    await ensure_group(redis, settings.commands_stream, settings.group)
    recovered = await consumer.recover_own_pending()
    if recovered:
        log.warning("recovered %d pending command entries", recovered)
    tasks: list[asyncio.Task[None]] = []
    relay_process = None
    if settings.relay_in_process:
        tasks.append(asyncio.create_task(relay.run(), name="relay"))
    else:
        relay_process = multiprocessing.get_context("spawn").Process(
            target=run_relay_process,
            args=(settings.event_store, settings.redis_url, settings.events_stream,
                  settings.relay_poll_seconds, os.getpid()),
            name="apikeys-relay",
        )
        relay_process.start()
    broker = build_broker(settings, consumer)
    await broker.start()
    tasks.append(asyncio.create_task(consumer.reclaim_forever(), name="reclaim"))
    status["ready"] = True
    print(
        f"keys service: consuming {settings.commands_stream} as {settings.consumer} "
        f"(group {settings.group}); health on http://{settings.health_addr}/health",
        flush=True,
    )
    try:
        await server.serve()
    finally:
        status["ready"] = False
        await broker.stop()
        if relay_process is not None:
            relay_process.terminate()
            await asyncio.to_thread(relay_process.join, 10)
        await relay.relay_once()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await redis.aclose()
        app.close()


def serve(settings: KeysSettings | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run_keys_service(settings or KeysSettings.from_env()))


if __name__ == "__main__":
    serve()
