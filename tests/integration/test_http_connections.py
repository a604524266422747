"""Connection limits of the product's HTTP servers, measured from outside on loopback: the
projection service's query server and the keys service's /health server, each a process of
its own with the common default of 1,024 file descriptors."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.local.embedded_redis import free_port
from tests.support.http_clients import (
    allow_test_descriptors,
    close_all,
    closed,
    connect,
    open_descriptors,
    read_answer,
    request,
    service_process,
    watch_closes,
)

CHECK = "/v1/check?key_id=k1&permission=p&location_id=l1"
IDLE = 1_500


@dataclass(frozen=True)
class Served:
    port: int
    pid: int


Start = Callable[..., AbstractContextManager[Served]]


def answers(port: int, path: str, data: bytes | None = None) -> tuple[int, bytes]:
    """One request on a new connection, as urllib makes it (``Connection: close``)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", data, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def answering(port: int, path: str) -> bool:
    try:
        return answers(port, path)[0] == 200
    except OSError:
        return False


@contextlib.contextmanager
def serving(module: str, env: dict[str, str], log: Path, port: int, ready: str) -> Iterator[Served]:
    """``python -m module`` with ``env`` (none of the test run's own settings), once it
    answers ``ready``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("APIKEYS_", "REDIS_URL"))}
    with service_process(["-m", module], {**base, **env}, log, lambda: answering(port, ready)) as p:
        yield Served(port, p.pid)


@pytest.fixture
def projections(redis_url: str, unique: str, tmp_path: Path) -> Start:
    """Start the projection service (empty views) with the given settings."""

    def start(**settings: str) -> AbstractContextManager[Served]:
        port = free_port()
        env = {
            "REDIS_URL": redis_url,
            "APIKEYS_EVENTS_STREAM": f"test.{unique}.events",
            "APIKEYS_VIEW_STORE": f"sqlite:///{tmp_path / 'views.db'}",
            "APIKEYS_HTTP_ADDR": f"127.0.0.1:{port}",
            **settings,
        }
        return serving("services.projections", env, tmp_path / "projections.log", port, CHECK)

    return start


@pytest.fixture
def keys(redis_url: str, unique: str, tmp_path: Path) -> Start:
    """Start the keys service (its /health and /ready server) with the given settings."""

    def start(**settings: str) -> AbstractContextManager[Served]:
        port = free_port()
        env = {
            "REDIS_URL": redis_url,
            "APIKEYS_EVENT_STORE": f"sqlite:///{tmp_path / 'events.db'}",
            "APIKEYS_COMMANDS_STREAM": f"test.{unique}.commands",
            "APIKEYS_RESULTS_STREAM": f"test.{unique}.results",
            "APIKEYS_EVENTS_STREAM": f"test.{unique}.events",
            "APIKEYS_DEAD_LETTER_STREAM": f"test.{unique}.dead-letter",
            "APIKEYS_KEYS_HEALTH_ADDR": f"127.0.0.1:{port}",
            "APIKEYS_CONSUMER_NAME": "keys-test",
            **settings,
        }
        return serving("services.keys", env, tmp_path / "keys.log", port, "/ready")

    return start


def open_idle(port: int, count: int) -> list[socket.socket]:
    allow_test_descriptors(count + 500)
    return [connect(port) for _ in range(count)]


def check_the_cap(served: Served, idle_count: int, cap: int, path: str, timeout: float) -> None:
    """``idle_count`` idle connections against a server capped at ``cap`` whose header
    timeout is ``timeout``: those over the cap are closed at once, an established connection
    is served throughout, and once the idle ones are closed at the timeout anyone is."""
    established = connect(served.port)
    assert request(established, path)[0] == 200
    # a connection's deadline runs from its own opening, which is after this instant
    opening = time.monotonic()
    idle = open_idle(served.port, idle_count)
    try:
        opened = time.monotonic()
        refused = watch_closes(idle, 1.5)
        assert idle_count - cap <= len(refused) <= idle_count - cap + 10  # the cap counts
        assert max(refused.values()) - opened < 1.5  # the established connection too
        assert request(established, path)[0] == 200
        assert request(established, "/health")[0] == 200
        newcomer = connect(served.port)
        newcomer.sendall(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
        assert watch_closes([newcomer], 1.0), "a connection over the cap is closed at once"
        newcomer.close()
        assert open_descriptors(served.pid) < 1024
        held = [s for s in idle if s not in refused]
        reaped = watch_closes(held, timeout + 2.0)
        assert len(reaped) == len(held)
        assert min(reaped.values()) - opening >= timeout - 0.1
        assert request(established, path)[0] == 200
        assert answers(served.port, path)[0] == 200
        assert answers(served.port, "/health")[0] == 200
    finally:
        close_all(idle)
        established.close()


def test_checks_and_health_are_answered_through_1500_idle_connections(projections: Start) -> None:
    with projections(APIKEYS_HTTP_HEADER_TIMEOUT_SECONDS="4") as served:
        check_the_cap(served, IDLE, cap=800, path=CHECK, timeout=4.0)  # the default cap


def test_the_keys_health_server_caps_its_connections(keys: Start) -> None:
    settings = {"APIKEYS_HTTP_MAX_CONNECTIONS": "50", "APIKEYS_HTTP_HEADER_TIMEOUT_SECONDS": "2"}
    with keys(**settings) as served:
        check_the_cap(served, 200, cap=50, path="/ready", timeout=2.0)


def test_slow_header_clients_are_closed_after_the_header_timeout_while_checks_go_on(
    projections: Start,
) -> None:
    timeout = 2.0
    with projections(APIKEYS_HTTP_HEADER_TIMEOUT_SECONDS=str(timeout)) as served:
        port = served.port
        slow = open_idle(port, 200)
        opened = time.monotonic()
        stop = threading.Event()
        gone: dict[socket.socket, float] = {}
        threads = [
            threading.Thread(target=_trickle, args=(slow, stop), daemon=True),
            threading.Thread(
                target=lambda: gone.update(watch_closes(slow, timeout + 2.0)), daemon=True
            ),
        ]
        for thread in threads:
            thread.start()
        try:
            latencies = []
            while threads[1].is_alive():  # checks meanwhile, each on a connection of its own
                started = time.monotonic()
                assert answers(port, CHECK)[0] == 200
                latencies.append(time.monotonic() - started)
                time.sleep(0.05)
            assert len(latencies) > 20 and max(latencies) < 0.5
            assert len(gone) == len(slow), "every slow client is closed"
            assert all(timeout <= when - opened < timeout + 1.0 for when in gone.values())
        finally:
            stop.set()
            for thread in threads:
                thread.join(5)
            close_all(slow)


def _trickle(socks: list[socket.socket], stop: threading.Event) -> None:
    """Each open socket gets the next byte of a request's headers once a second."""
    head = b"GET /v1/check?key_id=k1&permission=p&location_id=l1 HTTP/1.1\r\nhost: test\r\n\r\n"
    sent = 0
    while not stop.wait(0 if sent == 0 else 1.0) and sent < len(head):
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.send(head[sent : sent + 1])
        sent += 1


def test_idle_keep_alive_connections_are_closed_after_the_keep_alive_time(
    projections: Start,
) -> None:
    with projections(APIKEYS_HTTP_KEEPALIVE_SECONDS="1") as served:
        port = served.port
        busy, idle = connect(port), connect(port)
        try:
            assert request(idle, CHECK)[0] == 200
            answered = time.monotonic()
            gone = watch_closes([idle], 3.0)
            assert idle in gone and 0.95 <= gone[idle] - answered < 1.5
            for _ in range(8):  # a request every 0.4 s keeps a connection open
                assert request(busy, CHECK)[0] == 200
                time.sleep(0.4)
            assert not closed(busy)
            assert request(busy, "/health")[0] == 200
        finally:
            close_all([busy, idle])


def test_a_body_over_the_limit_gets_a_readable_413_when_sent_before_reading(
    projections: Start,
) -> None:
    body = json.dumps({"token": "a" * 5_000_000}).encode()
    with projections() as served:
        port = served.port
        status, answer = answers(port, "/v1/verify", body)  # urllib writes it all first
        assert status == 413 and json.loads(answer)["error"]
        # a keep-alive client gets the same, and its connection serves the next request
        sock = connect(port)
        try:
            sock.sendall(
                b"POST /v1/verify HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n" % len(body) + body
            )
            assert read_answer(sock)[0] == 413
            assert request(sock, CHECK)[0] == 200
        finally:
            sock.close()


def test_a_body_that_never_arrives_is_closed_at_the_request_deadline(projections: Start) -> None:
    with projections(APIKEYS_HTTP_HEADER_TIMEOUT_SECONDS="1") as served:
        port = served.port
        sock = connect(port)
        try:
            sock.sendall(
                b"POST /v1/verify HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n"
                b"content-length: 100\r\n\r\n{"
            )
            sent = time.monotonic()
            gone = watch_closes([sock], 3.0)
            assert sock in gone and 0.95 <= gone[sock] - sent < 2.0
        finally:
            sock.close()
