"""Gateway middleware: a pure ASGI middleware (Litestar, Starlette, FastAPI alike) that lets a
request through only with a valid API key token.

The token comes from ``Authorization: Bearer <token>`` or HTTP Basic with user ``api`` and the
token as password. It is verified by the projection service (``POST /v1/verify``), with a
permission and location when ``requirement`` names them for the request. A positive answer is
cached for at most ``cache_seconds`` (bounded, least recently used first out; keyed by the
token's SHA-256, never the token); a negative one never outlives its request. The key is put in
the request scope (``scope["state"]["api_key"]``, i.e. ``request.state.api_key``). Answers:
401 (no or bad token), 403 (valid key without the permission), 503 when the projection service
cannot be reached or answers 503 (an outage is never a 401), each ``{"error", "detail"}``.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from client.errors import ClientError, ProjectionUnavailable
from client.queries import Queries
from client.settings import ClientSettings
from contracts.codec import json_encoder
from contracts.tokens import token_sha256

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ApiKeyIdentity:
    key_id: str
    organization_id: str


@dataclass(frozen=True)
class Requirement:
    permission: str
    location_id: str


Requirer = Callable[[Scope], Requirement | None]


def path_rule(pattern: str, permission: str) -> Requirer:
    """A requirement from the path: ``pattern`` is a regular expression with a named group
    ``location_id``, e.g. ``path_rule(r"^/plants/(?P<location_id>[^/]+)/", "view_private")``."""
    compiled = re.compile(pattern)

    def requirement(scope: Scope) -> Requirement | None:
        found = compiled.search(scope.get("path", ""))
        return Requirement(permission, found["location_id"]) if found else None

    return requirement


class VerdictCache:
    """Positive verdicts only, each for at most ``seconds``, at most ``size`` of them."""

    def __init__(self, seconds: float, size: int) -> None:
        self.seconds = seconds
        self.size = size
        self._entries: OrderedDict[tuple[str, Requirement | None], tuple[float, ApiKeyIdentity]]
        self._entries = OrderedDict()

    def get(self, key: tuple[str, Requirement | None]) -> ApiKeyIdentity | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[0] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[1]

    def put(self, key: tuple[str, Requirement | None], identity: ApiKeyIdentity) -> None:
        if self.seconds <= 0 or self.size <= 0:
            return
        self._entries[key] = (time.monotonic() + self.seconds, identity)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Refusal(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


def token_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() != b"authorization":
            continue
        kind, _, credentials = value.decode("latin-1").partition(" ")
        if kind.lower() == "bearer":
            return credentials.strip() or None
        if kind.lower() == "basic":
            try:
                user, _, password = base64.b64decode(credentials.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return password if user == "api" and password else None
    return None


class ApiKeyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: ClientSettings | None = None,
        queries: Queries | None = None,
        requirement: Requirer | None = None,
        cache_seconds: float = 2.0,
        cache_size: int = 10_000,
        exempt_paths: tuple[str, ...] = (),
    ) -> None:
        if cache_seconds > 60:
            raise ValueError("cache_seconds: at most 60 (a revoked key must stop working soon)")
        self.app = app
        self.queries = queries or Queries(settings or ClientSettings.from_env())
        self.requirement = requirement
        self.cache = VerdictCache(cache_seconds, cache_size)
        self.exempt_paths = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        try:
            identity = await self.authenticate(scope)
        except Refusal as refusal:
            await _refuse(send, refusal)
            return
        scope.setdefault("state", {})["api_key"] = identity
        await self.app(scope, receive, send)

    async def authenticate(self, scope: Scope) -> ApiKeyIdentity:
        token = token_of(scope)
        if token is None:
            raise Refusal(401, "unauthorized", "send the API key as 'Authorization: Bearer ...'")
        need = self.requirement(scope) if self.requirement else None
        cache_key = (token_sha256(token), need)
        cached = self.cache.get(cache_key)
        if cached is not None:
            return cached
        try:
            answer = await self.queries.verify(
                token, need.permission if need else None, need.location_id if need else None
            )
        except ProjectionUnavailable as error:
            raise Refusal(503, "unavailable", f"cannot verify the key now: {error}") from None
        except ClientError as error:
            raise Refusal(503, "unavailable", f"the key service refused: {error}") from None
        if not answer.valid or answer.key_id is None or answer.organization_id is None:
            raise Refusal(401, "invalid_key", f"the API key is not valid ({answer.code})")
        if need is not None and not answer.allowed:
            raise Refusal(
                403, "forbidden", f"the key may not {need.permission} at {need.location_id}"
            )
        identity = ApiKeyIdentity(answer.key_id, answer.organization_id)
        self.cache.put(cache_key, identity)
        return identity


async def _refuse(send: Send, refusal: Refusal) -> None:
    body = json_encoder.encode({"error": refusal.error, "detail": refusal.detail})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if refusal.status == 401:
        headers.append((b"www-authenticate", b'Bearer, Basic realm="api"'))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
