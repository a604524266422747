"""The straightforward pipeline, kept as the baseline for the throughput figures.

A FastStream consumer in the same consumer group shape, one command at a time: decode, load
the aggregates from the event store, apply the same domain rules, save them (one transaction
per command), publish one result. No batching, no cache, no receipts.

    .venv/bin/python benchmarks/straightforward_pipeline.py   # used by benchmarks/run_all.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventsourcing.application import AggregateNotFoundError
from faststream import FastStream
from faststream.redis import RedisBroker, StreamSub

from contracts.commands import KeyCommand, command_decoder
from services.keys.domain import ApiKey, DomainError, Organization
from services.keys.handlers import handle
from services.keys.store import ApiKeysApplication


class PlainWork:
    def __init__(self, app: ApiKeysApplication):
        self.app = app
        self.touched: list[Any] = []

    def _get(self, aggregate_id: Any) -> Any:
        for aggregate in self.touched:
            if aggregate.id == aggregate_id:
                return aggregate
        try:
            return self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def organization(self, organization_id: str) -> Organization | None:
        return self._get(Organization.create_id(organization_id))

    def key(self, key_id: str) -> ApiKey | None:
        return self._get(ApiKey.create_id(key_id))

    def key_exists(self, key_id: str) -> bool:
        return self.key(key_id) is not None

    def touch(self, *aggregates: Any) -> None:
        self.touched.extend(a for a in aggregates if a not in self.touched)


def build(redis_url: str, store: str, results: str, commands: str) -> FastStream:
    app = ApiKeysApplication(
        store, AGGREGATE_CACHE_MAXSIZE=os.environ.get("AGGREGATE_CACHE_MAXSIZE", "0")
    )
    quiet = logging.getLogger("straightforward")
    quiet.setLevel(logging.WARNING)
    broker = RedisBroker(redis_url, logger=quiet)

    @broker.subscriber(stream=StreamSub(commands, group="straightforward", consumer="one"))
    async def on_command(body: dict[str, Any]) -> None:
        command = command_decoder.decode(json.dumps(body))
        work = PlainWork(app)
        result: dict[str, Any] = {"command_id": command.command_id, "status": "accepted"}
        try:
            handle(command, work, datetime.now(UTC))
            recordings = app.save(*work.touched)
            result["position"] = recordings[-1].notification.id if recordings else None
        except DomainError as error:
            result = {**result, "status": "rejected", "error": {"code": error.code}}
        if isinstance(command, KeyCommand):
            result["key_id"] = command.key_id
        await broker.publish(json.dumps(result), stream=results)

    return FastStream(broker)


if __name__ == "__main__":
    application = build(
        os.environ["REDIS_URL"],
        os.environ["APIKEYS_EVENT_STORE"],
        os.environ.get("APIKEYS_RESULTS_STREAM", "straightforward.results"),
        os.environ.get("APIKEYS_COMMANDS_STREAM", "straightforward.commands"),
    )
    asyncio.run(application.run())
