"""Steady load for the soak: commands via XADD at a fixed rate over a bounded set of keys, their
results read back, and HTTP GET /v1/check from threads at a fixed rate."""

from __future__ import annotations

import http.client
import json
import math
import random
import threading
import time
from collections import Counter
from typing import Any

import redis

from tests.support.scenario import create_key, key_command, organization_setup

ORG = "soak"
COMMANDS, RESULTS = "apikeys.commands", "apikeys.results"
STREAMS = (COMMANDS, RESULTS, "apikeys.events", "apikeys.dead-letter")


def setup_commands(keys: int) -> list[dict[str, Any]]:
    """The organization (locations L0 > L1 > L2, roles R0, R1) and every key of the soak."""
    commands = organization_setup(ORG, locations=3, roles=2)
    locations, roles = ("L1", "L2"), ("R0", "R1")
    return commands + [
        create_key(ORG, f"k{i}", locations=locations, roles=roles) for i in range(keys)
    ]


class Mix:
    """The steady mix over keys that all exist already, per 20 commands: 9 RenameApiKey,
    5 ToggleRoleLocation (flips a cell), 4 DisableApiKey/EnableApiKey (alternating per key),
    2 CreateApiKey of an existing key id (rejected `key_exists`: the rejection path, no new key).
    State stays bounded: the keys and their sizes do not grow; only the history does."""

    PLAN = ["rename"] * 9 + ["toggle"] * 5 + ["switch"] * 4 + ["create"] * 2

    def __init__(self, keys: int, seed: int = 7):
        self.keys = keys
        self.rng = random.Random(seed)
        self.disabled: set[str] = set()
        self.count = 0

    def next(self) -> dict[str, Any]:
        kind = self.PLAN[self.count % len(self.PLAN)]
        self.count += 1
        key = f"k{self.rng.randrange(self.keys)}"
        if kind == "rename":
            return key_command("RenameApiKey", ORG, key, name=f"name {self.count}")
        if kind == "toggle":
            location = self.rng.choice(("L1", "L2"))
            return key_command("ToggleRoleLocation", ORG, key, role_id="R0", location_id=location)
        if kind == "switch":
            if key in self.disabled:
                self.disabled.discard(key)
                return key_command("EnableApiKey", ORG, key)
            self.disabled.add(key)
            return key_command("DisableApiKey", ORG, key)
        return create_key(ORG, key, locations=("L1", "L2"), roles=("R0", "R1"))


class Latencies:
    """Latencies in 1 %-wide logarithmic buckets (bounded memory for long soaks), plus the raw
    values since the last `take_window`."""

    BASE, STEP = 1e-6, math.log(1.01)

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.window: list[float] = []
        self.lock = threading.Lock()

    def add(self, seconds: float) -> None:
        bucket = max(0, int(math.log(max(seconds, self.BASE) / self.BASE) / self.STEP))
        with self.lock:
            self.buckets[bucket] += 1
            self.window.append(seconds)

    def take_window(self) -> list[float]:
        with self.lock:
            window, self.window = self.window, []
        return window

    def percentile_ms(self, fraction: float) -> float | None:
        with self.lock:
            total = sum(self.buckets.values())
            seen = 0
            for bucket in sorted(self.buckets):
                seen += self.buckets[bucket]
                if seen >= fraction * total:
                    return self.BASE * math.exp((bucket + 1) * self.STEP) * 1000
        return None


def percentile_ms(values: list[float], fraction: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else None


class Worker(threading.Thread):
    """A daemon thread that keeps the first exception it dies of."""

    def __init__(self, name: str, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.stop_event = stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:  # reported by the main thread
            self.error = error

    def work(self) -> None:
        raise NotImplementedError


class Sender(Worker):
    """XADD `rate` commands a second, on schedule (late commands go out at once)."""

    def __init__(self, url: str, rate: float, mix: Mix, stop: threading.Event):
        super().__init__("sender", stop)
        self.url, self.rate, self.mix = url, rate, mix
        self.sent = 0
        self.sent_at: dict[str, float] = {}  # command_id -> perf_counter, until its result

    def work(self) -> None:
        client = redis.Redis.from_url(self.url)
        begin = time.perf_counter()
        while not self.stop_event.is_set():
            due = int((time.perf_counter() - begin) * self.rate) + 1
            if due > self.sent:
                pipe = client.pipeline(transaction=False)
                now = time.perf_counter()
                for _ in range(due - self.sent):
                    command = self.mix.next()
                    self.sent_at[command["command_id"]] = now
                    pipe.xadd(COMMANDS, {"__data__": json.dumps(command)})
                pipe.execute()
                self.sent = due
            wait = begin + self.sent / self.rate - time.perf_counter()
            if wait > 0:
                self.stop_event.wait(wait)
        client.close()


class Reader(Worker):
    """Reads the results stream after `start_id`: counts, statuses, XADD -> result latency."""

    def __init__(self, url: str, start_id: bytes, sender: Sender, stop: threading.Event):
        super().__init__("reader", stop)
        self.url, self.last, self.sender = url, start_id, sender
        self.received = 0
        self.statuses: Counter[str] = Counter()
        self.latency = Latencies()

    def work(self) -> None:
        client = redis.Redis.from_url(self.url)
        while not self.stop_event.is_set():
            reply: Any = client.xread({RESULTS: self.last}, block=500, count=1000)
            now = time.perf_counter()
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    self.last = entry_id
                    result = json.loads(fields[b"__data__"])
                    self.received += 1
                    self.statuses[f"{result['type']} {result['status']}"] += 1
                    sent = self.sender.sent_at.pop(result["command_id"], None)
                    if sent is not None:
                        self.latency.add(now - sent)
        client.close()


class Checker(Worker):
    """One keep-alive connection, GET /v1/check at `rate` a second for random keys (latency
    from sending the request to the end of the answer)."""

    def __init__(
        self,
        index: int,
        http_addr: str,
        rate: float,
        keys: int,
        latency: Latencies,
        stop: threading.Event,
    ):
        super().__init__(f"checker-{index}", stop)
        self.addr, self.rate, self.keys, self.latency = http_addr, rate, keys, latency
        self.rng = random.Random(index)
        self.done = self.errors = 0

    def work(self) -> None:
        host, _, port = self.addr.rpartition(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        begin = time.perf_counter()
        while not self.stop_event.is_set():
            wait = begin + (self.done + self.errors) / self.rate - time.perf_counter()
            if wait > 0 and self.stop_event.wait(wait):
                break
            key = f"k{self.rng.randrange(self.keys)}"
            path = f"/v1/check?key_id={key}&permission=perm0&location_id=L1"
            started = time.perf_counter()
            try:
                connection.request("GET", path)
                answer = connection.getresponse()
                answer.read()
                ok = answer.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                ok = False
            if ok:
                self.done += 1
                self.latency.add(time.perf_counter() - started)
            else:
                self.errors += 1
        connection.close()
