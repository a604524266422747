"""The callers file's rules, the caller counts' bound, secure-by-default settings and
``apikeys new-caller``."""

from __future__ import annotations

import json

import pytest

from contracts.callers import MAX_CALLERS, MAX_CALLERS_FILE_BYTES, decode_callers
from contracts.tokens import CALLER_PREFIX, checksum_ok, has_prefix, token_sha256
from services.cli import main as apikeys
from services.projections.runtime.access import StartRefused, is_loopback, who_may_ask
from services.projections.runtime.caller_counts import OTHER, CallerCounts
from services.projections.runtime.callers import Callers, read_callers
from services.projections.runtime.settings import Settings

HASH = "0" * 64


def caller(name: str = "gw", secret: str = HASH, **changes: object) -> dict:
    fields = {"name": name, "secret_sha256": secret, "scopes": ["check"], "organizations": ["*"]}
    return fields | changes


def encoded(*callers: dict) -> bytes:
    return json.dumps(list(callers)).encode()


class TestCallersFile:
    def test_a_valid_list_is_read(self):
        [entry] = decode_callers(encoded(caller(scopes=["verify", "audit"], organizations=["a"])))
        assert (entry.name, entry.scopes, entry.organizations) == ("gw", ["verify", "audit"], ["a"])

    @pytest.mark.parametrize(
        "content",
        [
            b"",
            b"{}",
            encoded(caller(name="")),
            encoded(caller(name="has space")),
            encoded(caller(secret="ABC" + HASH[3:])),
            encoded(caller(scopes=[])),
            encoded(caller(scopes=["admin"])),
            encoded(caller(organizations=[])),
            encoded(caller(organizations=["*", "a"])),
            encoded(caller(organizations=["x" * 201])),
            encoded(caller() | {"token": "apc_x"}),
            encoded(caller(), caller(secret="1" * 64)),  # the same name twice
            encoded(caller(), caller(name="other")),  # the same hash twice
            encoded(*(caller(f"c{n}", f"{n:064x}") for n in range(MAX_CALLERS + 1))),
            b"[" + b" " * MAX_CALLERS_FILE_BYTES + b"]",
        ],
    )
    def test_anything_else_is_refused(self, content):
        with pytest.raises(ValueError):
            decode_callers(content)

    def test_a_caller_sees_its_organizations_or_all(self, tmp_path):
        path = tmp_path / "callers.json"
        path.write_bytes(encoded(caller("one", organizations=["a"]), caller("all", "1" * 64)))
        by_hash = read_callers(path)
        assert by_hash[HASH].sees("a") and not by_hash[HASH].sees("b")
        assert by_hash["1" * 64].sees("b")

    def test_a_token_is_authenticated_by_its_hash(self, tmp_path):
        path = tmp_path / "callers.json"
        path.write_bytes(encoded(caller(secret=token_sha256("apc_secret"))))
        callers = Callers(read_callers(path))
        assert callers.authenticate(b"apc_secret").name == "gw"  # type: ignore[union-attr]
        assert callers.authenticate(b"apc_other") is None


class TestCounts:
    def test_counts_by_caller_and_status_within_a_bound(self):
        counts = CallerCounts(max_entries=2)
        for name, status in [("a", 200), ("a", 200), ("b", 403), ("c", 200), ("d", 200)]:
            counts.count(name, status)
        assert counts.snapshot() == {("a", 200): 2, ("b", 403): 1, (OTHER, 200): 2}


class TestSecureByDefault:
    @pytest.mark.parametrize(
        ("host", "loopback"),
        [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True)]
        + [("0.0.0.0", False), ("::", False), ("192.0.2.1", False)],
    )
    def test_loopback_addresses(self, host, loopback):
        assert is_loopback(host) is loopback

    def test_no_callers_answers_only_on_loopback(self):
        assert who_may_ask(Settings()) is None
        with pytest.raises(StartRefused, match="APIKEYS_CALLERS_FILE"):
            who_may_ask(Settings(http_host="0.0.0.0"))

    def test_anonymous_beyond_loopback_only_when_asked_for_with_a_warning(self, caplog):
        assert who_may_ask(Settings(http_host="0.0.0.0", allow_anonymous_queries=True)) is None
        assert "APIKEYS_ALLOW_ANONYMOUS_QUERIES=true" in caplog.text

    def test_settings_from_the_environment(self):
        settings = Settings.from_env(
            {
                "APIKEYS_CALLERS_FILE": "/etc/callers.json",
                "APIKEYS_ALLOW_ANONYMOUS_QUERIES": "true",
                "APIKEYS_TLS_CERT": "c.pem",
                "APIKEYS_TLS_KEY": "k.pem",
            }
        )
        assert settings.callers_file == "/etc/callers.json"
        assert settings.allow_anonymous_queries and settings.tls_files == ("c.pem", "k.pem")
        default = Settings.from_env({})
        assert default.tls_files is None and default.callers_file is None

    @pytest.mark.parametrize(
        "env",
        [
            {"APIKEYS_TLS_CERT": "c.pem"},
            {"APIKEYS_TLS_KEY": "k.pem"},
            {"APIKEYS_ALLOW_ANONYMOUS_QUERIES": "maybe"},
        ],
    )
    def test_incomplete_or_unclear_settings_are_refused(self, env):
        with pytest.raises(ValueError):
            Settings.from_env(env)


class TestNewCaller:
    def test_prints_a_token_and_the_entry_holding_only_its_hash(self, capsys):
        status = apikeys(
            ["new-caller", "--name", "gw", "--scope", "verify", "--scope", "check"]
            + ["--organization", "*"]
        )
        assert status == 0
        lines = capsys.readouterr().out.splitlines()
        token = lines[0].split()[1]
        assert has_prefix(token, CALLER_PREFIX) and checksum_ok(token)
        [entry] = decode_callers(("[" + lines[-1] + "]").encode())
        assert entry.secret_sha256 == token_sha256(token)
        assert (entry.name, entry.scopes, entry.organizations) == ("gw", ["check", "verify"], ["*"])
        assert token not in lines[-1]

    def test_an_invalid_entry_is_refused(self, capsys):
        args = ["new-caller", "--name", "gw", "--scope", "check", "--organization", "*"]
        status = apikeys([*args, "--organization", "a"])
        assert status == 2
        assert "stands alone" in capsys.readouterr().err
