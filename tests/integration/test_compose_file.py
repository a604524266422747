"""docker-compose.yml is accepted by Compose (skipped, visibly, where no Compose is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_compose_accepts_the_file_and_it_describes_every_part() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no docker compose / docker-compose on this machine")
    result = subprocess.run(
        [*command, "config", "--services"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"redis", "postgres", "keys", "projections"}
    config = subprocess.run(
        [*command, "config"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "appendonly" in config and "APIKEYS_EVENT_STORE" in config


def test_every_service_has_a_health_check_restarts_and_waits_for_healthy_dependencies() -> None:
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert set(services) == {"redis", "postgres", "keys", "projections"}
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"], name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services
            assert condition == {"condition": "service_healthy"}, name
    assert set(services["keys"]["depends_on"]) == {"redis", "postgres"}
    assert set(services["projections"]["depends_on"]) == {"redis", "postgres", "keys"}
    assert "/health" in " ".join(services["keys"]["healthcheck"]["test"])


def test_the_projection_service_has_a_callers_file_of_hashes_only() -> None:
    import yaml

    from contracts.callers import decode_callers

    projections = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][
        "projections"
    ]
    path = projections["environment"]["APIKEYS_CALLERS_FILE"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1)[::-1] for v in projections["volumes"])
    folder, name = path.rsplit("/", 1)
    callers = decode_callers((ROOT / mounts[folder] / name).read_bytes())
    assert [c.name for c in callers] == ["gateway"]


def test_no_token_is_committed() -> None:
    import re

    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # a token: prefix, underscore, 32 random and 6 checksum characters (contracts/tokens.py)
    token = re.compile(r"\bap[kc]_[0-9A-Za-z]{38}\b")
    for path in tracked:
        file = ROOT / path
        if file.is_file() and file.suffix in {".py", ".md", ".json", ".yml", ".toml", ".txt"}:
            assert not token.search(file.read_text(errors="replace")), path
