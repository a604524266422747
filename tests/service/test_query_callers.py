"""Who may ask, over real HTTP: the served app with a callers file on a loopback port."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from contracts.tokens import CALLER_PREFIX, new_token
from services.projections.runtime.caller_counts import UNKNOWN
from tests.support.callers import (
    AS_OF,
    TOKEN_A,
    TOKEN_B,
    TOKENS,
    ServedApi,
    bearer,
    entry,
    serve_api,
    standard_callers,
    write_callers,
)

CHECK = "/v1/check?key_id={key}&permission=view&location_id=hq"
QUERIES = [
    ("GET", CHECK.format(key="ka")),
    ("GET", CHECK.format(key="ka") + "&min_position=0"),
    ("GET", CHECK.format(key="ka") + f"&as_of={AS_OF}"),
    ("POST", "/v1/verify"),
    ("GET", "/v1/keys/ka/permissions"),
    ("GET", "/v1/keys/ka/history"),
    ("GET", "/v1/organizations/org-a/keys?permission=view&location_id=hq"),
    ("GET", "/v1/no-such-route"),
    ("GET", "//v1/check?key_id=ka&permission=view&location_id=hq"),
]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ServedApi]:
    async with serve_api(tmp_path) as served:
        yield served


@pytest.fixture
async def http(api: ServedApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        yield client


async def ask(http: httpx.AsyncClient, method: str, url: str, caller: str | None = None, **kw):
    headers = bearer(caller) if caller else {}
    if method == "POST":
        kw.setdefault("json", {"token": TOKEN_A})
    return await http.request(method, url, headers=headers, **kw)


class TestAuthentication:
    @pytest.mark.parametrize(("method", "url"), QUERIES)
    async def test_every_query_without_a_known_caller_token_is_401(self, http, method, url):
        body = {"token": TOKEN_A} if method == "POST" else None
        for authorization in (None, f"Bearer {new_token(CALLER_PREFIX)}", "Bearer", "Basic Z3c6"):
            headers = {} if authorization is None else {"Authorization": authorization}
            answer = await http.request(method, url, headers=headers, json=body)
            assert answer.status_code == 401, authorization
            assert answer.json()["error"] == "unauthenticated"
            assert answer.json()["detail"]
            assert answer.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize("path", ["/health", "/ready", "/schema/openapi.json"])
    async def test_health_readiness_and_the_document_stay_open(self, http, path):
        assert (await http.get(path)).status_code in (200, 503)  # /ready: not caught up

    async def test_a_known_token_is_answered(self, http):
        answer = await ask(http, "GET", CHECK.format(key="ka"), "gateway")
        assert answer.status_code == 200 and answer.json()["allowed"] is True


class TestScopes:
    @pytest.mark.parametrize(
        ("caller", "url", "scope"),
        [
            ("verifier", CHECK.format(key="ka"), "check"),  # the lean path
            ("verifier", CHECK.format(key="ka") + "&min_position=0", "check"),
            ("verifier", "/v1/keys/ka/permissions", "check"),
            ("gateway", CHECK.format(key="ka") + f"&as_of={AS_OF}", "audit"),
            ("gateway", CHECK.format(key="ka") + "&explain=true", "audit"),
            ("gateway", CHECK.format(key="ka") + "&explain=false", "audit"),
            ("gateway", CHECK.format(key="ka") + "&as%5Fof=" + AS_OF, "audit"),
            ("gateway", f"/v1/keys/ka/permissions?as_of={AS_OF}", "audit"),
            ("gateway", "/v1/keys/ka/history", "audit"),
            ("gateway", f"/v1/keys/ka/history?as_of={AS_OF}", "audit"),
            ("gateway", "/v1/organizations/org-a/keys?permission=view&location_id=hq", "list"),
        ],
    )
    async def test_a_scope_the_caller_lacks_is_403(self, http, caller, url, scope):
        answer = await ask(http, "GET", url, caller)
        assert answer.status_code == 403
        assert answer.json() == {
            "error": "forbidden",
            "detail": f"this caller lacks the scope {scope!r}",
        }

    async def test_verify_needs_the_verify_scope(self, http):
        answer = await ask(http, "POST", "/v1/verify", "auditor")
        assert answer.status_code == 403
        assert (await ask(http, "POST", "/v1/verify", "gateway")).json()["code"] == "VALID"

    @pytest.mark.parametrize(
        "url",
        [
            CHECK.format(key="ka") + f"&as_of={AS_OF}",
            CHECK.format(key="ka") + "&explain=true",
            f"/v1/keys/ka/permissions?as_of={AS_OF}",
            "/v1/keys/ka/history",
            "/v1/organizations/org-a/keys?permission=view&location_id=hq",
        ],
    )
    async def test_a_caller_with_the_scopes_is_answered(self, http, url):
        assert (await ask(http, "GET", url, "auditor")).status_code == 200


class TestOrganizations:
    async def test_an_organization_in_the_path_not_the_callers_is_403(self, http):
        url = "/v1/organizations/{}/keys?permission=view&location_id=hq"
        answer = await ask(http, "GET", url.format("org-b"), "auditor")
        assert answer.status_code == 403
        assert answer.json()["error"] == "forbidden"
        assert "organization" in answer.json()["detail"]
        mine = await ask(http, "GET", url.format("org-a"), "auditor")
        assert [k["key_id"] for k in mine.json()["keys"]] == ["ka"]
        everyone = await ask(http, "GET", url.format("org-b"), "root")
        assert [k["key_id"] for k in everyone.json()["keys"]] == ["kb"]

    @pytest.mark.parametrize(
        ("caller", "url"),
        [
            ("gateway", CHECK.format(key="{key}")),  # the lean path
            ("gateway", CHECK.format(key="{key}") + "&min_position=0"),
            ("gateway", CHECK.format(key="{key}") + "&item_owner=key&min_position=1"),
            ("auditor", CHECK.format(key="{key}") + "&explain=true"),
            ("auditor", CHECK.format(key="{key}") + f"&as_of={AS_OF}"),
            ("gateway", "/v1/keys/{key}/permissions"),
            ("auditor", "/v1/keys/{key}/permissions?as_of=" + AS_OF),
            ("auditor", "/v1/keys/{key}/history"),
            ("auditor", "/v1/keys/{key}/history?after_position=0&limit=5"),
            ("auditor", "/v1/keys/{key}/history?as_of=" + AS_OF),
        ],
    )
    async def test_another_tenants_key_is_answered_exactly_as_an_unknown_one(
        self, http, caller, url
    ):
        hidden = await ask(http, "GET", url.format(key="kb"), caller)
        unknown = await ask(http, "GET", url.format(key="kz"), caller)  # no such key
        assert hidden.status_code == unknown.status_code == 200
        # an answer naming the key names the one asked about: the rest is byte for byte the same
        assert hidden.content == unknown.content.replace(b'"kz"', b'"kb"')
        seen = await ask(http, "GET", url.format(key="kb"), "root")  # the key does exist
        assert seen.content != hidden.content

    @pytest.mark.parametrize(
        "extra", [{}, {"permission": "view", "location_id": "hq"}], ids=["token", "with-check"]
    )
    async def test_verify_of_another_tenants_token_is_indistinguishable_from_an_unknown_one(
        self, http, extra
    ):
        hidden = await ask(http, "POST", "/v1/verify", "gateway", json={"token": TOKEN_B, **extra})
        unknown = await ask(
            http, "POST", "/v1/verify", "gateway", json={"token": new_token(), **extra}
        )
        assert hidden.status_code == unknown.status_code == 200
        assert hidden.content == unknown.content
        assert hidden.json()["code"] == "NOT_FOUND"
        seen = await ask(http, "POST", "/v1/verify", "verifier", json={"token": TOKEN_B, **extra})
        assert seen.json()["code"] == "VALID" and seen.json()["organization_id"] == "org-b"


async def eventually(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


class TestCallersFile:
    async def test_a_changed_file_is_used_without_a_restart(self, http, api):
        newcomer = new_token(CALLER_PREFIX)
        url = CHECK.format(key="ka")
        assert (
            await http.get(url, headers={"Authorization": f"Bearer {newcomer}"})
        ).status_code == 401
        callers = [c for c in standard_callers() if c["name"] != "gateway"]
        write_callers(api.callers_file.path, [*callers, entry("new", newcomer, ["check"], ["*"])])

        async def newcomer_answered() -> bool:
            answer = await http.get(url, headers={"Authorization": f"Bearer {newcomer}"})
            return answer.status_code == 200

        await eventually(newcomer_answered)
        assert (await ask(http, "GET", url, "gateway")).status_code == 401  # removed

    @pytest.mark.parametrize(
        "content",
        [
            b"not json",
            b'{"name": "x"}',
            b'[{"name": "x", "secret_sha256": "00", "scopes": ["check"], "organizations": ["*"]}]',
            b'[{"name": "x", "secret_sha256": "' + b"0" * 64 + b'", "scopes": ["admin"], '
            b'"organizations": ["*"]}]',
            b"[" + b" " * (1024 * 1024) + b"]",
        ],
        ids=["not-json", "not-a-list", "bad-hash", "bad-scope", "too-large"],
    )
    async def test_a_malformed_file_keeps_the_last_good_callers_and_says_so(
        self, http, api, caplog, content
    ):
        caplog.set_level(logging.INFO, logger="apikeys.callers")
        api.callers_file.path.write_bytes(content)

        async def complained() -> bool:
            return any("keeping the last good callers" in r.getMessage() for r in caplog.records)

        await eventually(complained)
        assert (await ask(http, "GET", CHECK.format(key="ka"), "gateway")).status_code == 200


class TestWhoAsked:
    async def test_answers_are_counted_by_caller_and_status(self, http, api):
        for _ in range(3):
            await ask(http, "GET", CHECK.format(key="ka"), "gateway")  # the lean path
        await ask(http, "GET", CHECK.format(key="ka") + "&min_position=0", "gateway")
        await ask(http, "GET", "/v1/keys/ka/history", "gateway")
        await ask(http, "GET", CHECK.format(key="ka"))
        counts = api.counts.snapshot()
        assert counts[("gateway", 200)] == 4
        assert counts[("gateway", 403)] == 1
        assert counts[(UNKNOWN, 401)] == 1

    async def test_audit_and_list_queries_are_logged_without_tokens(self, http, caplog):
        caplog.set_level(logging.INFO, logger="apikeys.queries")
        await ask(http, "GET", "/v1/keys/ka/history", "auditor")
        await ask(
            http, "GET", "/v1/organizations/org-a/keys?permission=view&location_id=hq", "auditor"
        )
        await ask(http, "GET", CHECK.format(key="ka") + "&explain=true", "auditor")
        await ask(http, "GET", CHECK.format(key="ka"), "auditor")  # neither: not logged
        lines = [r.getMessage() for r in caplog.records if r.name == "apikeys.queries"]
        assert lines == [
            "query caller=auditor route=/v1/keys/{key_id:str}/history organization=org-a",
            "query caller=auditor route=/v1/organizations/{organization_id:str}/keys "
            "organization=org-a",
            "query caller=auditor route=/v1/check organization=org-a",
        ]
        text = caplog.text
        for token in TOKENS.values():
            assert token not in text
        assert TOKEN_A not in text


async def test_the_openapi_document_describes_the_bearer_scheme_and_401_403(http):
    document = (await http.get("/schema/openapi.json")).json()
    scheme = document["components"]["securitySchemes"]["callerToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path in ("/v1/check", "/v1/keys/{key_id}/history"):
        operation = next(iter(document["paths"][path].values()))
        assert {"401", "403"} <= set(operation["responses"])
        assert operation["security"] == [{"callerToken": []}]
