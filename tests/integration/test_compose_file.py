"""docker-compose.yml describes the scaled layout and is accepted by Compose (that part is
skipped, visibly, where no Compose is installed; the layout is checked statically anyway)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REDIS_NODES = {f"redis-{n}" for n in range(1, 7)}
KEYS = {"keys-1", "keys-2", "keys-3"}
PROJECTIONS = {"projections-1", "projections-2"}
EVERY_SERVICE = (
    REDIS_NODES | KEYS | PROJECTIONS | {"redis-cluster-create", "postgres", "queries", "admin"}
)
ONE_SHOT = "redis-cluster-create"


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])


def test_compose_accepts_the_file_and_it_describes_every_part() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose / docker-compose on this machine")
    result = subprocess.run(
        [*command, "config", "--services"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == EVERY_SERVICE


def test_every_service_has_a_health_check_restarts_and_waits_for_what_it_needs(
    services: dict[str, Any],
) -> None:
    assert set(services) == EVERY_SERVICE
    for name, service in services.items():
        if name == ONE_SHOT:
            assert service["restart"] == "on-failure"
        else:
            assert service["restart"] == "unless-stopped", name
            assert service["healthcheck"]["test"], name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, name
            expected = "service_completed_successfully" if dependency == ONE_SHOT else None
            assert condition == {"condition": expected or "service_healthy"}, name
    for name in KEYS | PROJECTIONS:
        assert set(services[name]["depends_on"]) == {ONE_SHOT, "postgres"}, name
        assert "/health" in " ".join(services[name]["healthcheck"]["test"]), name
    assert set(services["queries"]["depends_on"]) == PROJECTIONS
    assert set(services[ONE_SHOT]["depends_on"]) == REDIS_NODES


def test_redis_is_a_cluster_of_three_primaries_and_three_replicas_with_aof(
    services: dict[str, Any],
) -> None:
    for name in REDIS_NODES:
        command = services[name]["command"]
        assert command[0] == "redis-server"
        options = dict(zip(command[1::2], command[2::2], strict=True))
        assert options["--cluster-enabled"] == "yes" and options["--appendonly"] == "yes"
        assert options["--cluster-announce-hostname"] == name
        assert services[name]["volumes"], name
    create = " ".join(services[ONE_SHOT]["command"])
    assert "--cluster create" in create and "--cluster-replicas 1" in create
    assert set(re.findall(r"(redis-\d):6379", create)) == REDIS_NODES


def test_every_replica_uses_the_cluster_the_shared_store_and_a_name_of_its_own(
    services: dict[str, Any],
) -> None:
    keys = [services[name]["environment"] for name in sorted(KEYS)]
    assert {env["APIKEYS_CONSUMER_NAME"] for env in keys} == KEYS
    assert len({env["APIKEYS_EVENT_STORE"] for env in keys}) == 1  # one event store
    assert len({env["APIKEYS_PARTITIONS"] for env in keys}) == 1  # one number of partitions
    views = [services[name]["environment"] for name in sorted(PROJECTIONS)]
    assert len({env["APIKEYS_VIEW_TABLE_PREFIX"] for env in views}) == len(PROJECTIONS)
    for env in keys + views:
        assert env["APIKEYS_REDIS_CLUSTER"] == "true"
        # several nodes: a replica started while one of them is down still finds the cluster
        nodes = re.fullmatch(r"redis://((?:redis-\d:6379,?)+)/0", env["REDIS_URL"])
        assert nodes is not None and len(nodes.group(1).split(",")) >= 3, env["REDIS_URL"]
        assert set(nodes.group(1).replace(":6379", "").split(",")) <= REDIS_NODES


def test_the_load_balancer_sends_queries_only_to_ready_projection_replicas(
    services: dict[str, Any],
) -> None:
    mount = services["queries"]["volumes"][0]
    config = (ROOT / mount.split(":")[0]).read_text()
    assert "option httpchk GET /ready" in config and "http-check expect status 200" in config
    servers = re.findall(r"^\s*server (\S+) (\S+):8080 check", config, re.MULTILINE)
    assert {name for name, _ in servers} == PROJECTIONS
    assert {host for _, host in servers} == PROJECTIONS
    assert "monitor-uri /haproxy-health" in config
    assert "/haproxy-health" in " ".join(services["queries"]["healthcheck"]["test"])


def test_every_projection_replica_has_a_callers_file_of_hashes_only(
    services: dict[str, Any],
) -> None:
    from contracts.callers import decode_callers

    for name in PROJECTIONS:
        projections = services[name]
        path = projections["environment"]["APIKEYS_CALLERS_FILE"]
        mounts = dict(v.rsplit(":", 1)[0].split(":", 1)[::-1] for v in projections["volumes"])
        folder, file_name = path.rsplit("/", 1)
        callers = decode_callers((ROOT / mounts[folder] / file_name).read_bytes())
        assert [c.name for c in callers] == ["gateway"], name


def test_no_token_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # a token: prefix, underscore, 32 random and 6 checksum characters (contracts/tokens.py)
    token = re.compile(r"\bap[kc]_[0-9A-Za-z]{38}\b")
    for path in tracked:
        file = ROOT / path
        if file.is_file() and file.suffix in {".py", ".md", ".json", ".yml", ".toml", ".txt"}:
            assert not token.search(file.read_text(errors="replace")), path


def test_the_admin_page_reads_through_the_queries_address_with_the_keys_partitions(
    services: dict[str, Any],
) -> None:
    admin = services["admin"]
    # it writes through the client library, to the same cluster as the keys service
    for setting in ("REDIS_URL", "APIKEYS_REDIS_CLUSTER"):
        assert admin["environment"][setting] == services["keys-1"]["environment"][setting]
    assert admin["environment"]["APIKEYS_REDIS_CLUSTER"] == "true"
    assert set(admin["depends_on"]) == {"redis-cluster-create", "queries"}
    assert admin["environment"]["APIKEYS_ADMIN_PROJECTIONS_URL"] == "http://queries:8080"
    assert (
        admin["environment"]["APIKEYS_PARTITIONS"]
        == services["keys-1"]["environment"]["APIKEYS_PARTITIONS"]
    )
    assert not admin["environment"]["APIKEYS_ADMIN_TRUSTED_PROXIES"]
