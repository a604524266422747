"""The load: a plan of commands with the outcome each must get, sent by XADD at a steady rate.

The plan is an organization's setup, then creates of many keys, interleaved with creates of an
already used key id (rejected ``key_exists``), exact resends of an earlier command (``duplicate``)
and DisableApiKey/EnableApiKey pairs on the same key back to back. The driver can stop at a
marked point, between the two commands of a pair, so the test injects its fault there.

Entries get explicit ids (``<ms>-<n>``, n counting up): when an XADD fails with no answer (Redis
went away mid-call) it is sent again with the same id, and Redis refusing the id as "equal or
smaller" proves the first one landed. So the commands stream holds each planned command exactly
once, in plan order, whatever happened to the connection.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.scenario import create_key, key_command, organization_setup

ACCEPTED, REJECTED, DUPLICATE = "accepted", "rejected", "duplicate"
TOGGLE_KEYS = 8
RETRY_INTERVAL_SECONDS = 0.05


@dataclass(frozen=True)
class Planned:
    command: dict[str, Any]
    status: str
    error_code: str | None = None

    @property
    def command_id(self) -> str:
        return str(self.command["command_id"])


@dataclass
class Plan:
    commands: list[Planned]
    toggle_keys: list[str]
    pause_before: int | None  # index of the first command sent after the fault point

    def final_status(self, key_id: str) -> str:
        """``active`` or ``disabled``: what the last Disable/Enable sent on the key makes it."""
        for planned in reversed(self.commands):
            command = planned.command
            if command.get("key_id") == key_id and command["type"] in (
                "DisableApiKey",
                "EnableApiKey",
            ):
                return "disabled" if command["type"] == "DisableApiKey" else "active"
        return "active"


def build_plan(org: str, total: int, pause_fraction: float | None = None, seed: int = 7) -> Plan:
    """About ``total`` commands; with ``pause_fraction``, a pair straddles that point."""
    rng = random.Random(seed)
    commands = [Planned(c, ACCEPTED) for c in organization_setup(org)]
    toggle_keys = [f"{org}-toggle-{n}" for n in range(TOGGLE_KEYS)]
    created: list[Planned] = []

    def create(key_id: str) -> None:
        planned = Planned(create_key(org, key_id), ACCEPTED)
        created.append(planned)
        commands.append(planned)

    def pair(key_id: str) -> None:
        commands.append(Planned(key_command("DisableApiKey", org, key_id), ACCEPTED))
        commands.append(Planned(key_command("EnableApiKey", org, key_id), ACCEPTED))

    for key_id in toggle_keys:
        create(key_id)
    ending = TOGGLE_KEYS // 2 + 2
    pause_at = None if pause_fraction is None else max(len(commands), int(total * pause_fraction))
    pause_before: int | None = None
    slot = 0
    while len(commands) < total - ending:
        slot += 1
        if pause_at is not None and pause_before is None and len(commands) >= pause_at:
            straddling = toggle_keys[0]
            commands.append(Planned(key_command("DisableApiKey", org, straddling), ACCEPTED))
            pause_before = len(commands)
            commands.append(Planned(key_command("EnableApiKey", org, straddling), ACCEPTED))
        elif slot % 50 == 25:
            again = rng.choice(created).command["key_id"]
            commands.append(Planned(create_key(org, again), REJECTED, "key_exists"))
        elif slot % 50 == 45:
            commands.append(Planned(dict(rng.choice(created).command), DUPLICATE))
        elif slot % 20 == 10:
            pair(toggle_keys[slot // 20 % TOGGLE_KEYS])
        else:
            create(f"{org}-key-{slot}")
    # the last command on half of the toggle keys is a Disable: both final states are checked
    for key_id in toggle_keys[1::2]:
        commands.append(Planned(key_command("DisableApiKey", org, key_id), ACCEPTED))
    return Plan(commands, toggle_keys, pause_before)


@dataclass
class Sent:
    planned: Planned
    entry_id: str


@dataclass
class LoadDriver:
    """Sends ``plan`` to ``stream`` at ``rate`` commands/s from a thread of its own."""

    redis_url: str
    stream: str
    plan: Plan
    rate: float
    give_up_after: float = 60.0  # seconds of a failing XADD before the driver stops
    sent: list[Sent] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.client = redis.Redis.from_url(
            self.redis_url,
            socket_timeout=2,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),  # _xadd retries, and knows when a retry landed
        )
        self.paused = threading.Event()
        self._resume = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load")
        self._id_ms = int(time.time() * 1000)

    def start(self) -> LoadDriver:
        self._thread.start()
        return self

    @property
    def sent_count(self) -> int:
        with self._lock:
            return len(self.sent)

    def wait_paused(self, timeout: float = 60.0) -> None:
        """Block until every command before the fault point is sent."""
        if not self.paused.wait(timeout):
            raise AssertionError(
                f"the load did not reach its fault point in {timeout} s "
                f"({self.sent_count} sent, error {self.error!r})"
            )

    def resume(self) -> None:
        self._resume.set()

    def stop(self) -> None:
        """Send nothing more (the commands sent so far stay in ``sent``)."""
        self._stopped.set()
        self._resume.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def join(self, timeout: float = 120.0) -> list[Sent]:
        self._resume.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(
                f"the load did not finish in {timeout} s "
                f"({self.sent_count}/{len(self.plan.commands)} sent)"
            )
        if self.error is not None:
            raise AssertionError(f"the load driver failed: {self.error!r}") from self.error
        return self.sent

    def _run(self) -> None:
        try:
            started = time.monotonic()
            for index, planned in enumerate(self.plan.commands):
                if index == self.plan.pause_before:
                    self.paused.set()
                    self._resume.wait(120)
                    started = time.monotonic() - index / self.rate  # keep pace from here
                if self._stopped.is_set():
                    return
                due = started + index / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                entry_id = self._xadd(index, planned.command)
                with self._lock:
                    self.sent.append(Sent(planned, entry_id))
        except BaseException as error:  # reported by join()
            self.error = error
        finally:
            self.paused.set()
            self.client.close()

    def _xadd(self, index: int, command: dict[str, Any]) -> str:
        entry_id = f"{self._id_ms}-{index + 1}"
        data = json.dumps(command)
        deadline = time.monotonic() + self.give_up_after
        unanswered = False
        while True:
            try:
                self.client.xadd(self.stream, {"__data__": data}, id=entry_id)
                return entry_id
            except redis.ResponseError as error:
                if unanswered and "equal or smaller" in str(error):
                    return entry_id  # an earlier attempt landed; its answer was lost
                raise
            except (redis.ConnectionError, redis.TimeoutError):
                if time.monotonic() > deadline or self._stopped.is_set():
                    raise
                unanswered = True
                time.sleep(RETRY_INTERVAL_SECONDS)
