"""Sends ImportApiKeys commands onto the commands stream, at most ``window`` awaiting their
results at once, and matches the results (followed on the results stream from its last entry
before the first send, never read from the start) to the lines they answer."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from contracts.results import CommandResult, result_decoder
from contracts.streams import DATA_FIELD
from services.bulk_import.lines import BadLine, Batch


@dataclass
class Tally:
    """What became of the lines so far; each rejected line goes to ``on_rejection``."""

    lines: int = 0
    accepted: int = 0
    already_present: int = 0
    rejected: int = 0
    unanswered: int = 0
    commands: int = 0
    on_rejection: Callable[[int, str, str], None] = lambda *_: None

    @property
    def answered(self) -> int:
        return self.accepted + self.already_present + self.rejected

    def reject(self, line: int, code: str, message: str) -> None:
        self.rejected += 1
        self.on_rejection(line, code, message)

    def record(self, batch: Batch, result: CommandResult) -> None:
        outcomes = result.outcomes
        if outcomes is None or len(outcomes) != len(batch.lines):
            error = result.error
            code, message = (error.code, error.message) if error else ("no_outcome", "")
            for line in batch.lines:
                self.reject(line, code, message)
            return
        for line, outcome in zip(batch.lines, outcomes, strict=True):
            if outcome.status == "accepted":
                self.accepted += 1
            elif outcome.status == "already_present":
                self.already_present += 1
            else:
                error = outcome.error
                self.reject(
                    line, error.code if error else "rejected", error.message if error else ""
                )


class Sender:
    def __init__(
        self,
        redis: Redis,
        commands_stream: str,
        results_stream: str,
        *,
        window: int = 16,
        answer_timeout: float = 300.0,
        on_rejection: Callable[[int, str, str], None] = lambda *_: None,
    ) -> None:
        self.redis = redis
        self.commands_stream = commands_stream
        self.results_stream = results_stream
        self.window = asyncio.Semaphore(window)
        self.answer_timeout = answer_timeout
        self.run_id = uuid.uuid4().hex[:12]
        self.pending: dict[str, Batch] = {}
        self.tally = Tally(on_rejection=on_rejection)
        self.answered = asyncio.Event()
        self.stopping = False

    async def run(self, items: Iterator[Batch | BadLine]) -> Tally:
        last = await self.redis.xrevrange(self.results_stream, count=1)
        follower = asyncio.create_task(self._follow(last[0][0] if last else b"0-0"))
        try:
            await self._send_all(items)
            await self._wait_for_answers()
        finally:
            # a blocking read is left to return by itself: cancelling it can leave
            # redis-py's connection waiting for a reply that never comes
            self.stopping = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(follower, FOLLOW_BLOCK_MS / 1000 + 5)
            for batch in self.pending.values():
                self.tally.unanswered += len(batch.lines)
            self.pending.clear()
        return self.tally

    async def _send_all(self, items: Iterator[Batch | BadLine]) -> None:
        while True:
            item = await asyncio.to_thread(next, items, None)  # reading may block (stdin)
            if item is None:
                return
            if isinstance(item, BadLine):
                self.tally.lines += 1
                self.tally.reject(item.line, item.code, item.message)
                continue
            await self._acquire()
            command_id = f"import-{self.run_id}-{self.tally.commands}"
            self.tally.commands += 1
            self.tally.lines += len(item.lines)
            self.pending[command_id] = item
            await self.redis.xadd(self.commands_stream, {DATA_FIELD: item.command(command_id)})

    async def _acquire(self) -> None:
        try:
            await asyncio.wait_for(self.window.acquire(), self.answer_timeout)
        except TimeoutError:
            raise NoAnswer(self.answer_timeout) from None

    async def _wait_for_answers(self) -> None:
        while self.pending:
            self.answered.clear()
            try:
                await asyncio.wait_for(self.answered.wait(), self.answer_timeout)
            except TimeoutError:
                return  # what is still pending is reported unanswered

    async def _follow(self, after: Any) -> None:
        while not self.stopping:
            reply: Any = await self.redis.xread(
                {self.results_stream: after}, count=100, block=FOLLOW_BLOCK_MS
            )
            for _, entries in reply or ():
                for entry_id, fields in entries:
                    after = entry_id
                    self._answer(fields.get(DATA_FIELD.encode()))

    def _answer(self, data: bytes | None) -> None:
        if data is None or b'"import-' + self.run_id.encode() not in data[:200]:
            return  # another sender's result
        result = result_decoder.decode(data)
        batch = self.pending.pop(result.command_id or "", None)
        if batch is None:
            return
        self.tally.record(batch, result)
        self.window.release()
        self.answered.set()


FOLLOW_BLOCK_MS = 250


class NoAnswer(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"no result for {seconds:.0f} s: is the keys service running?")
