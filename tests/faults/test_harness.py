"""The suite's own machinery: the proxy, the AOF Redis restart, the process cleanup and the
test clusters' ports work, so a failing fault test points at the product, not at the
harness."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.faults.checks import events_stream_problems, position_order_problems, result_problems
from tests.faults.load import ACCEPTED, DUPLICATE, REJECTED, LoadDriver, Sent, build_plan
from tests.faults.processes import MARKER_VARIABLE, ProcessHarness, is_gone
from tests.faults.proxy import TcpProxy
from tests.faults.redis_server import RestartableRedis
from tests.support.redis_cluster import HIGHEST_PORT, LocalRedisCluster

FAST_ERROR_SECONDS = 0.5


def client_through(proxy: TcpProxy, timeout: float = 5.0) -> redis.Redis:
    """A client that does not retry: each error it raises is the proxy's own, as fast."""
    return redis.Redis(
        port=proxy.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def fails_fast(client: redis.Redis) -> float:
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    return time.monotonic() - started


def test_the_proxy_forwards_cuts_fast_both_ways_and_restores(
    fault_redis: RestartableRedis, tcp_proxy: Callable[[str, int], TcpProxy]
) -> None:
    proxy = tcp_proxy("127.0.0.1", fault_redis.port)
    client = client_through(proxy)
    assert client.ping() is True
    blocked = client_through(proxy, timeout=10)
    blocked.ping()
    assert proxy.open_connections == 2

    proxy.cut()
    assert proxy.open_connections == 0
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        blocked.execute_command("BLPOP", "nothing", 5)  # an open connection fails at once
    assert time.monotonic() - started < FAST_ERROR_SECONDS
    client.connection_pool.disconnect()
    assert fails_fast(client) < FAST_ERROR_SECONDS  # and so does a new one
    direct = fault_redis.client()
    deadline = time.monotonic() + 2
    while len(direct.client_list()) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(direct.client_list()) == 1  # Redis saw the proxied connections end too

    proxy.restore()
    assert client.ping() is True


def test_redis_comes_back_from_its_aof_after_sigkill(fault_redis: RestartableRedis) -> None:
    client = fault_redis.client()
    for n in range(200):
        client.xadd("s", {"n": n})
    fault_redis.kill()
    with pytest.raises(redis.ConnectionError):
        fault_redis.client(timeout=0.5).ping()
    fault_redis.start()
    assert fault_redis.client().xlen("s") == 200


def test_the_load_lands_every_command_once_in_order_across_a_redis_restart(
    fault_redis: RestartableRedis,
) -> None:
    plan = build_plan("org-x", 600, pause_fraction=0.3)
    driver = LoadDriver(fault_redis.url, "commands", plan, rate=300).start()
    driver.wait_paused()
    fault_redis.kill()
    driver.resume()
    time.sleep(0.5)  # Redis stays down while the driver keeps trying
    fault_redis.start()
    sent = driver.join()
    stream: Any = fault_redis.client().xrange("commands")
    landed = [json.loads(fields[b"__data__"])["command_id"] for _, fields in stream]
    assert landed == [p.command_id for p in plan.commands]
    assert [i.decode() for i, _ in stream] == [s.entry_id for s in sent]


def test_teardown_kills_groups_descendants_and_orphans(tmp_path: Path, unique: str) -> None:
    harness = ProcessHarness(tmp_path, marker=f"self-{unique}")
    # a parent that starts two children in sessions of their own (out of its group), one of
    # them without the marker in its environment, and then exits: both are orphans
    script = (
        "import os, subprocess, sys, time\n"
        "sleeper = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        "subprocess.Popen(sleeper, start_new_session=True)\n"
        "bare = {k: v for k, v in os.environ.items() if k != sys.argv[1]}\n"
        "subprocess.Popen(sleeper, start_new_session=True, env=bare)\n"
        "time.sleep(1)\n"
    )
    parent = harness.start("parent", [sys.executable, "-c", script, MARKER_VARIABLE], harness.env())
    deadline = time.monotonic() + 10
    while len(psutil.Process(parent.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = psutil.Process(parent.pid).children()
    assert len(orphans) == 2
    assert len(harness.marked_processes()) == 2  # the parent and one child
    assert parent.popen.wait(timeout=10) == 0
    assert all(o.is_running() for o in orphans)
    assert harness.kill_everything() == []
    assert all(is_gone(o) for o in orphans)


def sent_plan(total: int) -> list[Sent]:
    plan = build_plan("org-x", total)
    return [Sent(planned, f"1-{n}") for n, planned in enumerate(plan.commands)]


def true_results(sent: list[Sent]) -> list[dict[str, Any]]:
    results = []
    for position, item in enumerate(sent, start=1):
        result: dict[str, Any] = {
            "command_id": item.planned.command_id,
            "status": item.planned.status,
        }
        if item.planned.status == ACCEPTED:
            result["position"] = position
        if item.planned.error_code:
            result["error"] = {"code": item.planned.error_code}
        results.append(result)
    return results


def test_the_result_checks_catch_a_lost_a_repeated_and_a_wrong_result() -> None:
    sent = sent_plan(300)
    results = true_results(sent)
    assert {s.planned.status for s in sent} == {ACCEPTED, DUPLICATE, REJECTED}
    assert result_problems(sent, results) == []
    assert position_order_problems(sent, results) == []
    assert result_problems(sent, results[:-1])  # one lost
    assert result_problems(sent, [*results, results[40]])  # one answered twice
    duplicate = next(r for r in results if r["status"] == DUPLICATE)
    assert result_problems(
        sent, [r if r is not duplicate else {**r, "status": ACCEPTED} for r in results]
    )
    original = next(r for r in results if r["command_id"] == duplicate["command_id"])
    assert result_problems(
        sent, [duplicate if r is original else original if r is duplicate else r for r in results]
    )  # answered out of send order
    swapped = [dict(r) for r in results]
    swapped[20]["position"], swapped[30]["position"] = (
        swapped[30]["position"],
        swapped[20]["position"],
    )
    assert position_order_problems(sent, swapped)


def test_the_events_check_catches_a_lost_a_repeated_and_a_reordered_event() -> None:
    stored = [{"position": p, "type": "ApiKeyCreated", "key_id": f"k{p}"} for p in (3, 5, 8)]
    published = [(f"{e['position']}-1", dict(e)) for e in stored]
    assert events_stream_problems(stored, published) == []
    assert events_stream_problems(stored, published[:-1])
    assert events_stream_problems(stored, [*published[:2], ("5-2", stored[1]), published[2]])
    assert events_stream_problems(stored, [published[1], published[0], published[2]])
    assert events_stream_problems(stored, [*published[:2], ("8-1", {**stored[2], "key_id": "x"})])


def test_a_cluster_node_whose_port_is_taken_first_starts_on_other_ports(tmp_path: Path) -> None:
    """Ports are found free, then bound by the nodes a moment later: another test run on the
    machine may take one in between. That node starts again elsewhere; nothing else is used."""
    cluster = LocalRedisCluster(tmp_path / "cluster")
    taken = cluster.nodes[0].port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        with cluster:
            ports = [node.port for node in cluster.nodes]
            assert taken not in ports and len(set(ports)) == len(ports)
            assert all(port <= HIGHEST_PORT for port in ports)
            with cluster.client() as client:
                client.set("apikeys-test", "1")
                assert client.get("apikeys-test") == b"1"
