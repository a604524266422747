"""The lean path for a plain ``GET /v1/check``, in front of the framework.

Litestar's per-request work (signature model, hook, response object) costs more than the check
itself, so a plainly valid check is parsed, answered and sent here. Anything else
(min_position, as_of, unknown, repeated, percent-encoded or invalid parameters) goes on to the
Litestar handler, so validation errors and waits stay exactly the framework's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from litestar.types import ASGIApp, Receive, Scope, Send

from contracts import queries as q
from contracts.codec import json_encoder
from services.projections.http.context import CALLER, visible_key
from services.projections.http.gate import caller_of
from services.projections.model.answers import check_answer
from services.projections.model.queries import check
from services.projections.runtime.caller_counts import CallerCounts
from services.projections.runtime.callers import Caller, Callers
from services.projections.runtime.freshness import Freshness
from services.projections.runtime.live import LiveReadModel

AnswerT = TypeVar("AnswerT", bound=q.Answer)


class StaleMarker(Protocol):
    """What the lean path needs of the query context: how fresh the model is."""

    freshness: Freshness
    refuse_when_stale: bool

    def fresh(self, answer: AnswerT) -> AnswerT: ...


_JSON_HEADER = (b"content-type", b"application/json")
# printable ASCII without '%' and '+': the raw query string is already its decoded form
_PLAIN_QUERY = re.compile(rb"[!-$&-*,-~]*")
# printable ASCII without space, '%', '+' and '&' matches the id and permission patterns of the
# handler (no control characters nor whitespace, 1-200 characters)
_VALUE = rb"([!-$'-*,-~]{1,200})"
# the order clients write (and the README shows): one match instead of a split and three checks
_CANONICAL = re.compile(
    rb"key_id="
    + _VALUE
    + rb"&permission="
    + _VALUE
    + rb"&location_id="
    + _VALUE
    + rb"(&item_owner=key)?"
)
_PLAIN_VALUE = re.compile(_VALUE)
_FAST_PARAMETERS = frozenset((b"key_id", b"permission", b"location_id", b"item_owner"))
_ITEM_OWNER = {None: False, b"key": True}


def _content_length(length: int) -> tuple[bytes, bytes]:
    return (b"content-length", b"%d" % length)


# answers are short: their content-length headers are made once
_LENGTH_HEADERS = [_content_length(n) for n in range(1024)]


def _parse_any_order(query: bytes) -> tuple[bytes, bytes, bytes, bool] | None:
    if not _PLAIN_QUERY.fullmatch(query):
        return None
    params: dict[bytes, bytes] = {}
    for pair in query.split(b"&"):
        name, sep, value = pair.partition(b"=")
        if not sep or name in params or name not in _FAST_PARAMETERS:
            return None
        params[name] = value
    key_id = params.get(b"key_id")
    permission = params.get(b"permission")
    location_id = params.get(b"location_id")
    own = _ITEM_OWNER.get(params.get(b"item_owner"))
    if (
        key_id is None
        or permission is None
        or location_id is None
        or own is None
        or not _PLAIN_VALUE.fullmatch(key_id)
        or not _PLAIN_VALUE.fullmatch(permission)
        or not _PLAIN_VALUE.fullmatch(location_id)
    ):
        return None
    return key_id, permission, location_id, own


class FastCheck:
    """ASGI middleware: answers a plainly valid check itself, passes anything else on.

    With ``callers``, only the check of a caller with the ``check`` scope (the gate judges
    every other request); a check answered in front of the gate is counted here."""

    def __init__(
        self,
        app: ASGIApp,
        live: LiveReadModel,
        clock: Callable[[], datetime],
        freshness: StaleMarker,
        callers: Callers | None = None,
        counts: CallerCounts | None = None,
    ) -> None:
        self.app = app
        self.live = live
        self.clock = clock
        self.freshness = freshness
        self.callers = callers
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/v1/check"
            and scope.get("method") == "GET"
        ):
            caller = None
            if self.callers is not None:
                caller = caller_of(scope, self.callers)
                if caller is None or "check" not in caller.scopes:
                    await self.app(scope, receive, send)
                    return
            body = self.answer(scope["query_string"], caller)
            if body is not None:
                length = len(body)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            _JSON_HEADER,
                            _LENGTH_HEADERS[length] if length < 1024 else _content_length(length),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body, "more_body": False})
                if caller is not None and self.counts is not None and CALLER not in scope:
                    self.counts.count(caller.name, 200)
                return
        await self.app(scope, receive, send)

    def answer(self, query: bytes, caller: Caller | None = None) -> bytes | None:
        """The JSON answer to a plain check's query string, or None to leave it to Litestar;
        a key of an organization the caller does not see is answered as an unknown one."""
        match = _CANONICAL.fullmatch(query)
        if match is not None:
            key_id, permission, location_id, own = match.groups()
            parsed = key_id, permission, location_id, own is not None
        else:
            found = _parse_any_order(query)
            if found is None:
                return None
            parsed = found
        if not self.live.loaded:
            return None  # the handler answers 503 until the model is loaded
        model = self.live.model
        marker = self.freshness
        if marker.refuse_when_stale and marker.freshness.stale_lag(model.position) is not None:
            return None  # the handler refuses it with a 503
        decision = check(
            model,
            visible_key(caller, model, parsed[0].decode()),
            parsed[1].decode(),
            parsed[2].decode(),
            parsed[3],
            self.clock(),
        )
        return json_encoder.encode(marker.fresh(check_answer(decision, model.position)))
