"""`apikeys import FILE` against `apikeys run`: bad lines reported by number and code while the
others go in, exit statuses, a second run that changes nothing, and the keys answering in
/v1/check."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from services.local.embedded_redis import free_port
from tests.integration.keys_process import wait_until
from tests.support.scenario import organization_setup, sha

ROOT = Path(__file__).resolve().parents[2]


class Running:
    def __init__(self, tmp_path: Path) -> None:
        self.redis_port, self.http_port = free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        self.env.update(
            {
                "APIKEYS_VAR_DIR": str(tmp_path / "var"),
                "APIKEYS_EMBEDDED_REDIS_PORT": str(self.redis_port),
                "APIKEYS_HTTP_ADDR": f"127.0.0.1:{self.http_port}",
                "APIKEYS_KEYS_HEALTH_ADDR": f"127.0.0.1:{free_port()}",
            }
        )
        self.log = tmp_path / "run.log"
        self.tmp = tmp_path
        self.redis = redis.Redis(port=self.redis_port)

    def check(self, key_id: str) -> bool:
        query = urllib.parse.urlencode(
            {"key_id": key_id, "permission": "perm0", "location_id": "L1"}
        )
        url = f"http://127.0.0.1:{self.http_port}/v1/check?{query}"
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310
            return bool(json.loads(answer.read())["allowed"])

    def apikeys_import(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", "import", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            timeout=120,
        )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    product = Running(tmp_path)
    with open(product.log, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run"],
            cwd=tmp_path,
            env=product.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: b"ready:" in product.log.read_bytes(), timeout=90)
        set_up = organization_setup("acme", locations=3, roles=2)
        for command in set_up:
            product.redis.xadd("apikeys.commands", {"__data__": json.dumps(command)})
        wait_until(lambda: product.redis.xlen("apikeys.results") >= len(set_up), timeout=30)
        yield product
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        product.redis.close()


def key_line(key_id: str, **fields: Any) -> str:
    return json.dumps(
        {
            "organization_id": "acme",
            "actor_id": "alice",
            "key_id": key_id,
            "name": f"Imported {key_id}",
            "location_ids": ["L1"],
            "role_ids": ["R0"],
            "secret_sha256": sha(key_id),
            "secret_hint": "apk_...0000",
            **fields,
        }
    )


def test_bad_lines_are_reported_by_number_and_the_others_go_in(running: Running) -> None:
    good = [f"key-{i}" for i in range(1500)]
    lines = [key_line(k) for k in good[:2]]
    lines += ["{this is not json", key_line("no-secret", secret_sha256="not hex")]
    lines += [key_line("bad-role", role_ids=["R9"])]
    lines += [key_line(k) for k in good[2:]]
    path = running.tmp / "keys.jsonl"
    path.write_text("\n".join(lines) + "\n")

    first = running.apikeys_import(str(path))
    out = first.stdout.decode()
    assert first.returncode == 1, out + first.stderr.decode()
    assert "line 3: invalid_json" in out
    assert "line 4: invalid_secret_hash" in out
    assert "line 5: unknown_role" in out
    assert "1500 accepted, 0 already present, 3 rejected, 0 unanswered" in out
    assert "lines read" in first.stderr.decode()  # progress on standard error
    wait_until(lambda: running.check(good[-1]) and running.check(good[0]), timeout=60)
    assert not running.check("bad-role")

    events = running.redis.xlen("apikeys.events")
    only_good = "\n".join(key_line(k) for k in good) + "\n"
    second = running.apikeys_import("-", stdin=only_good.encode())
    assert second.returncode == 0, second.stdout.decode() + second.stderr.decode()
    assert "0 accepted, 1500 already present, 0 rejected" in second.stdout.decode()
    assert running.redis.xlen("apikeys.events") == events  # nothing new published


@pytest.mark.parametrize(
    "args", [("/no/such/file.jsonl",), (), ("a.jsonl", "b.jsonl"), ("--window", "0", "-")]
)
def test_a_usage_error_exits_with_status_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "import", *args],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr.decode()
