"""Secure by default and TLS, on the projection service as its own process: no anonymous
queries beyond loopback unless asked for, callers over HTTPS with a certificate made here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contracts.tokens import CALLER_PREFIX, new_token
from services.local.embedded_redis import free_port
from tests.support.callers import entry, write_callers
from tests.support.http_clients import ROOT, service_process, wait_until

CHECK = "/v1/check?key_id=ka&permission=view&location_id=hq"


def environment(redis_url: str, tmp_path: Path, addr: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIKEYS_")}
    return {
        **env,
        "REDIS_URL": redis_url,
        "APIKEYS_VIEW_STORE": f"sqlite:///{tmp_path / 'views.db'}",
        "APIKEYS_HTTP_ADDR": addr,
        **extra,
    }


def start_refused(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.projections"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def answers(url: str, **options: object) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2, **options).status_code == 200  # type: ignore[arg-type]
        except httpx.HTTPError:
            return False

    return probe


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]"])
def test_anonymous_queries_beyond_loopback_refuse_to_start(redis_url, tmp_path, host):
    done = start_refused(environment(redis_url, tmp_path, f"{host}:{free_port()}"))
    assert done.returncode != 0
    assert "APIKEYS_CALLERS_FILE" in done.stderr
    assert "loopback" in done.stderr


def test_a_callers_file_that_cannot_be_read_refuses_the_start(redis_url, tmp_path):
    bad = tmp_path / "callers.json"
    bad.write_text("[{")
    for path in (bad, tmp_path / "missing.json"):
        env = environment(
            redis_url, tmp_path, f"127.0.0.1:{free_port()}", APIKEYS_CALLERS_FILE=str(path)
        )
        done = start_refused(env)
        assert done.returncode != 0
        assert f"APIKEYS_CALLERS_FILE {path}" in done.stderr


def test_anonymous_queries_beyond_loopback_when_asked_for_with_a_warning(redis_url, tmp_path):
    port = free_port()
    env = environment(
        redis_url, tmp_path, f"0.0.0.0:{port}", APIKEYS_ALLOW_ANONYMOUS_QUERIES="true"
    )
    log = tmp_path / "projections.log"
    url = f"http://127.0.0.1:{port}"
    with service_process(["-m", "services.projections"], env, log, answers(url + "/health")):
        wait_until(lambda: httpx.get(url + CHECK, timeout=5).status_code == 200, 30.0, "loaded")
    text = log.read_text()
    assert "WARNING" in text and "APIKEYS_ALLOW_ANONYMOUS_QUERIES=true" in text


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_with_callers(redis_url, tmp_path):
    cert, key = self_signed(tmp_path)
    token = new_token(CALLER_PREFIX)
    callers = tmp_path / "callers.json"
    write_callers(callers, [entry("auditor", token, ["check", "audit"], ["*"])])
    port = free_port()
    env = environment(
        redis_url,
        tmp_path,
        f"127.0.0.1:{port}",
        APIKEYS_CALLERS_FILE=str(callers),
        APIKEYS_TLS_CERT=str(cert),
        APIKEYS_TLS_KEY=str(key),
    )
    trust = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}"
    log = tmp_path / "projections.log"
    authorized = {"Authorization": f"Bearer {token}"}
    with service_process(
        ["-m", "services.projections"], env, log, answers(url + "/health", verify=trust)
    ) as process:
        with httpx.Client(verify=trust, timeout=5) as client:
            assert client.get(url + CHECK).status_code == 401
            # once loaded, a check and an audit query (the event log) are answered
            wait_until(
                lambda: client.get(url + CHECK, headers=authorized).status_code == 200,
                30.0,
                "the model to load",
            )
            history = client.get(url + "/v1/keys/ka/history", headers=authorized)
            assert history.status_code == 200 and history.json()["entries"] == []
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not answered
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        with pytest.raises(httpx.ConnectError):  # nor is a client that does not trust it
            httpx.get(url + "/health", timeout=2)
        assert process.poll() is None, log.read_text()
    assert f"listening on {url}" in log.read_text()
