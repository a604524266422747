"""APIKEYS_HTTP_WORKERS=2: two projection workers under one parent serve one address; both
answer, alike at the same position; ``min_position`` reads one's own writes on either; /metrics
counts both; a worker killed is replaced (the persisting one by a persisting one); SIGTERM ends
them all, and a parent killed outright leaves none behind."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from services.local.embedded_redis import free_port
from services.projections.store import open_store
from tests.faults.deployment import wait_healthy
from tests.faults.processes import ManagedProcess, ProcessHarness, wait_gone
from tests.integration.test_query_replicas import KEYS, queries, wait_for_position
from tests.support.scenario import create_key, key_command, organization_setup

WORKER = "x-apikeys-worker"


@pytest.fixture
def harness(tmp_path: Path, unique: str) -> Iterator[ProcessHarness]:
    processes = ProcessHarness(tmp_path, marker=f"http-workers-{unique}")
    try:
        yield processes
    finally:
        survivors = processes.kill_everything()
        assert not survivors, f"processes survived the test: {survivors}"


def workers_service(
    harness: ProcessHarness, redis_url: str, events: str, view_store: str
) -> tuple[ManagedProcess, str]:
    addr = f"127.0.0.1:{free_port()}"
    process = harness.python(
        "projection-workers",
        ["services.projections"],
        harness.env(
            REDIS_URL=redis_url,
            APIKEYS_EVENTS_STREAM=events,
            APIKEYS_VIEW_STORE=view_store,
            APIKEYS_HTTP_ADDR=addr,
            APIKEYS_HTTP_WORKERS="2",
        ),
    )
    wait_healthy(process, f"http://{addr}/health")
    return process, f"http://{addr}"


def connections_per_worker(
    base: str, count: int = 2, timeout: float = 30
) -> dict[str, httpx.Client]:
    """A kept-alive connection to each of ``count`` workers, by pid: new connections until
    /health has been answered by that many (the kernel spreads them over the workers)."""
    found: dict[str, httpx.Client] = {}
    deadline = time.monotonic() + timeout
    while len(found) < count:
        assert time.monotonic() < deadline, f"only workers {sorted(found)} answered"
        http = httpx.Client(base_url=base, timeout=10)
        try:
            reply = http.get("/health")
        except httpx.TransportError:  # a worker still starting: its connections wait
            http.close()
            continue
        pid = reply.headers.get(WORKER)
        if reply.status_code == 200 and pid is not None and pid not in found:
            found[pid] = http
        else:
            http.close()
            time.sleep(0.01)
    return found


def answers(http: httpx.Client, min_position: int) -> dict[str, object]:
    out = {}
    for path in queries():
        sep = "&" if "?" in path else "?"
        reply = http.get(f"{path}{sep}min_position={min_position}")
        assert reply.status_code == 200, (path, reply.status_code, reply.text)
        out[path] = reply.json()
    return out


def metric_lines(http: httpx.Client, name: str) -> dict[str, float]:
    text = http.get("/metrics").text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name)
    }


def checks_counted(http: httpx.Client) -> float:
    return sum(metric_lines(http, "apikeys_checks_total").values())


def wait_counted(http: httpx.Client, expected: float, timeout: float = 5) -> float:
    deadline = time.monotonic() + timeout
    while (counted := checks_counted(http)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return counted


def persisting(http: httpx.Client) -> dict[str, float]:
    """pid -> 1.0 (writes the view store) or 0.0 (memory only), as /metrics says."""
    lines = metric_lines(http, "apikeys_projection_worker_persists")
    return {key.split('pid="')[1].split('"')[0]: value for key, value in lines.items()}


def send(client: redis.Redis, stream: str, commands: list[dict[str, object]]) -> None:
    for command in commands:
        client.xadd(stream, {"__data__": json.dumps(command)})


def test_two_http_workers_answer_alike_count_together_and_are_replaced(
    harness: ProcessHarness, redis_url: str, unique: str, tmp_path: Path
) -> None:
    streams = {
        "APIKEYS_COMMANDS_STREAM": f"{unique}.commands",
        "APIKEYS_RESULTS_STREAM": f"{unique}.results",
        "APIKEYS_EVENTS_STREAM": f"{unique}.events",
        "APIKEYS_DEAD_LETTER_STREAM": f"{unique}.dead-letter",
    }
    commands_stream, results = streams["APIKEYS_COMMANDS_STREAM"], streams["APIKEYS_RESULTS_STREAM"]
    keys = harness.python(
        "keys",
        ["services.keys"],
        harness.env(
            REDIS_URL=redis_url,
            APIKEYS_EVENT_STORE=f"sqlite:///{tmp_path / 'events.db'}",
            APIKEYS_KEYS_HEALTH_ADDR=f"127.0.0.1:{free_port()}",
            APIKEYS_CONSUMER_NAME=f"keys-{unique}",
            APIKEYS_PARTITIONS_KEY=f"{unique}.partitions",
            **streams,
        ),
    )
    view_store = f"sqlite:///{tmp_path / 'views.db'}"
    parent, base = workers_service(harness, redis_url, streams["APIKEYS_EVENTS_STREAM"], view_store)
    client = redis.Redis.from_url(redis_url)
    commands = organization_setup("qr-org") + [create_key("qr-org", k) for k in KEYS]
    commands += [key_command("DisableApiKey", "qr-org", k) for k in KEYS[::3]]
    send(client, commands_stream, commands)
    position = wait_for_position(client, results, len(commands), keys)

    workers = connections_per_worker(base)
    children = {str(p.pid) for p in psutil.Process(parent.pid).children()}
    assert set(workers) == children, parent.log_tail()
    first, second = (answers(http, position) for http in workers.values())
    assert first == second

    # read-your-writes on either worker: asked at once with the new position, both wait for it
    rename = key_command("RenameApiKey", "qr-org", KEYS[1], name="Renamed")
    send(client, commands_stream, [rename])
    newer = wait_for_position(client, results, len(commands) + 1, keys)
    assert newer > position
    for http in workers.values():
        path = "/v1/organizations/qr-org/keys?permission=perm0&location_id=L1"
        reply = http.get(f"{path}&min_position={newer}").json()
        names = {holder["key_id"]: holder["name"] for holder in reply["keys"]}
        assert reply["position"] >= newer and names[KEYS[1]] == "Renamed", reply

    # the counts of both workers in one scrape, whichever answers it
    roles = persisting(next(iter(workers.values())))
    assert sorted(roles.values()) == [0.0, 1.0] and set(roles) == set(workers), roles
    asked = sum(path.startswith("/v1/check") for path in queries()) * len(workers)
    before = wait_counted(next(iter(workers.values())), asked)
    assert before == asked  # the checks that answers() asked of both
    for n, http in enumerate(workers.values()):
        for _ in range(5 + n * 3):
            assert http.get("/v1/check?key_id=qr-key-1&permission=perm0&location_id=L1").is_success
    for http in workers.values():  # each worker hands its counts over within a second
        assert wait_counted(http, before + 5 + 8) == before + 5 + 8

    # the persisting worker killed: replaced by one that persists, the other answers meanwhile
    writer = next(pid for pid, role in roles.items() if role == 1.0)
    reader = next(pid for pid in workers if pid != writer)
    os.kill(int(writer), signal.SIGKILL)
    assert workers[reader].get("/health").headers[WORKER] == reader
    replaced = wait_for_replacement(base, gone=writer, stays=reader)
    roles = persisting(workers[reader])
    assert roles == {reader: 0.0, replaced: 1.0}, roles
    send(client, commands_stream, [key_command("RenameApiKey", "qr-org", KEYS[2], name="Later")])
    latest = wait_for_position(client, results, len(commands) + 2, keys)
    assert wait_stored(view_store, latest) >= latest

    # SIGTERM to the parent ends every worker, and the parent exits 0
    processes = [psutil.Process(parent.pid), *psutil.Process(parent.pid).children()]
    parent.popen.send_signal(signal.SIGTERM)
    assert parent.popen.wait(timeout=15) == 0, parent.log_tail()
    assert not wait_gone(processes, timeout=10)
    for http in workers.values():
        http.close()
    client.close()


def wait_for_replacement(base: str, gone: str, stays: str, timeout: float = 30) -> str:
    """The pid of the worker that took ``gone``'s place beside ``stays``."""
    deadline = time.monotonic() + timeout
    while True:
        found = connections_per_worker(base, timeout=deadline - time.monotonic())
        for http in found.values():
            http.close()
        if gone not in found:
            assert stays in found, (stays, sorted(found))
            return next(pid for pid in found if pid != stays)
        assert time.monotonic() < deadline, f"{gone} still answers"
        time.sleep(0.1)


def wait_stored(view_store: str, position: int, timeout: float = 15) -> int:
    """The view store's position once it has reached ``position`` (or the deadline)."""
    store = open_store(view_store)
    try:
        deadline = time.monotonic() + timeout
        while store.position() < position and time.monotonic() < deadline:
            time.sleep(0.05)
        return store.position()
    finally:
        store.close()


def test_a_parent_killed_outright_leaves_no_worker(
    harness: ProcessHarness, redis_url: str, unique: str, tmp_path: Path
) -> None:
    parent, base = workers_service(
        harness, redis_url, f"{unique}.events", f"sqlite:///{tmp_path / 'views.db'}"
    )
    workers = connections_per_worker(base)
    for http in workers.values():
        http.close()
    children = psutil.Process(parent.pid).children()
    assert {str(p.pid) for p in children} == set(workers), parent.log_tail()
    os.kill(parent.pid, signal.SIGKILL)
    parent.popen.wait(timeout=5)
    assert not wait_gone(children, timeout=10), parent.log_tail()


def test_apikeys_run_passes_http_workers_on(
    harness: ProcessHarness, unique: str, tmp_path: Path
) -> None:
    var, addr = tmp_path / "var", f"127.0.0.1:{free_port()}"
    run = harness.python(
        "run",
        ["services.cli", "run"],
        harness.env(
            APIKEYS_VAR_DIR=str(var),
            APIKEYS_EMBEDDED_REDIS_PORT=str(free_port()),
            APIKEYS_EVENT_STORE=f"sqlite:///{var / 'events.db'}",
            APIKEYS_VIEW_STORE=f"sqlite:///{var / 'views.db'}",
            APIKEYS_HTTP_ADDR=addr,
            APIKEYS_KEYS_HEALTH_ADDR=f"127.0.0.1:{free_port()}",
            APIKEYS_ADMIN_ADDR=f"127.0.0.1:{free_port()}",
            APIKEYS_HTTP_WORKERS="2",
        ),
    )
    wait_healthy(run, f"http://{addr}/health")
    workers = connections_per_worker(f"http://{addr}")
    for http in workers.values():  # each worker says it is ready, for itself
        deadline = time.monotonic() + 30
        while (ready := http.get("/ready")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.status_code == 200, ready.text
        http.close()
    everything = [psutil.Process(run.pid), *psutil.Process(run.pid).children(recursive=True)]
    assert {str(p.pid) for p in everything} >= set(workers)
    run.popen.send_signal(signal.SIGTERM)
    assert run.popen.wait(timeout=30) == 0, run.log_tail()
    assert not wait_gone(everything, timeout=10), run.log_tail()
