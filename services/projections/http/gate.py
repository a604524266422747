"""Who may ask, with a callers file: every request but ``/health``, ``/ready`` and the OpenAPI
document carries ``Authorization: Bearer <caller token>``.

- ``Gate`` (ASGI, in front of the router): no token or an unknown one -> 401; the caller is put
  in the request's scope, and its answer is counted by caller and status.
- ``authorize`` (a Litestar guard, after routing, so it judges the handler actually reached): the
  handler's scope (``opt["scope"]``), ``audit`` for ``as_of`` and ``explain``, and the
  organization named in the path -> 403; audit and list requests are logged, one line each.
- Questions about a key of an organization the caller does not see are answered by the
  handlers as for a key that does not exist (``context.visible_key``).
"""

from __future__ import annotations

import logging
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from contracts import queries as q
from contracts.codec import json_encoder
from services.projections.http.context import CALLER, caller_in, context_of
from services.projections.runtime.caller_counts import UNKNOWN, CallerCounts
from services.projections.runtime.callers import Caller, Callers

log = logging.getLogger("apikeys.queries")
OPEN_PATHS = frozenset(("/health", "/ready"))
OPEN_PREFIX = "/schema"  # the OpenAPI document
AUDIT_PARAMETERS = ("as_of", "explain")
_BEARER = b"bearer "
_CHALLENGE = (b"www-authenticate", b'Bearer realm="apikeys"')


class Forbidden(Exception):
    """403: the caller lacks a scope, or may not ask about the organization."""


def bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            if value[:7].lower() == _BEARER:
                return value[7:].strip()
            return None
    return None


def _refusal(detail: str) -> bytes:
    return json_encoder.encode(q.ErrorAnswer(error="unauthenticated", detail=detail))


_NO_TOKEN = _refusal("send a caller token: Authorization: Bearer <token>")
_UNKNOWN_TOKEN = _refusal("unknown caller token")


def caller_of(scope: Scope, callers: Callers) -> Caller | None:
    """The request's caller: as the gate found it, else from its token (one hash, one lookup)."""
    known = caller_in(scope)
    if known is not None:
        return known
    token = bearer_token(scope)
    return None if token is None else callers.authenticate(token)


class Gate:
    """ASGI: authenticates every request but the open ones (fail closed: a path is open only
    by name, everything else needs a caller)."""

    def __init__(self, app: ASGIApp, callers: Callers, counts: CallerCounts) -> None:
        self.app = app
        self.callers = callers
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIX):
            await self.app(scope, receive, send)
            return
        caller = caller_of(scope, self.callers)
        if caller is None:
            await self._unauthenticated(scope, send)
            return
        scope[CALLER] = caller  # type: ignore[literal-required]
        counts, name = self.counts, caller.name

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                counts.count(name, message["status"])
            await send(message)

        await self.app(scope, receive, counted)

    async def _unauthenticated(self, scope: Scope, send: Send) -> None:
        body = _NO_TOKEN if bearer_token(scope) is None else _UNKNOWN_TOKEN
        self.counts.count(UNKNOWN, 401)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            _CHALLENGE,
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def needed_scopes(connection: ASGIConnection[Any, Any, Any, Any], scope: str) -> list[str]:
    """The handler's scope, and ``audit`` when the query asks as of a time or why."""
    needed = [scope]
    params = connection.query_params
    if any(name in params for name in AUDIT_PARAMETERS):
        needed.append("audit")
    return needed


def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard: the caller's scopes and organizations against the handler reached."""
    context = context_of(connection.app.state)
    if context.callers is None:
        return
    scope = handler.opt.get("scope")
    if scope is None:
        if any(path.startswith("/v1/") for path in handler.paths):
            raise Forbidden("no caller may ask this")  # a query nobody gave a scope
        return
    caller = caller_in(connection.scope)
    if caller is None:  # only the gate puts a caller here: never answer without one
        raise Forbidden("no caller")
    needed = needed_scopes(connection, scope)
    for each in needed:
        if each not in caller.scopes:
            raise Forbidden(f"this caller lacks the scope {each!r}")
    organization = connection.path_params.get("organization_id")
    if organization is not None and not caller.sees(organization):
        raise Forbidden("this caller may not ask about this organization")
    if "audit" in needed or "list" in needed:
        if organization is None:
            key_id = connection.path_params.get("key_id") or connection.query_params.get("key_id")
            organization = context.organization_of(key_id)
        route = next(iter(handler.paths), "")
        # ids are checked after guards: escape what could forge a log line
        shown = None if organization is None else organization.encode("unicode_escape").decode()
        log.info("query caller=%s route=%s organization=%s", caller.name, route, shown)
