"""The Litestar app of the projection service, and the app as served, with the lean check path
in front of it."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp

from contracts import queries as q
from services.projections.http.context import (
    Clock,
    QueryContext,
    StaleRefused,
    context_of,
    utc_now,
)
from services.projections.http.fast_check import FastCheck
from services.projections.http.gate import Forbidden, Gate, authorize
from services.projections.http.routes import (
    check,
    health,
    key_history,
    key_permissions,
    organization_keys,
    ready,
    reject_unknown_query_parameters,
    verify,
)
from services.projections.runtime.caller_counts import CALLER_COUNTS, CallerCounts
from services.projections.runtime.callers import Callers
from services.projections.runtime.freshness import Freshness
from services.projections.runtime.live import LiveReadModel, NotLoaded, PositionNotReached
from services.projections.store.sql import SqlViewStore

MAX_BODY_BYTES = 8 * 1024


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[q.ErrorAnswer]:
    detail = None
    if isinstance(exc.extra, list | dict) and exc.extra:
        detail = "; ".join(
            f"{e.get('key', '')}: {e.get('message', '')}" if isinstance(e, dict) else str(e)
            for e in (exc.extra if isinstance(exc.extra, list) else [exc.extra])
        )
    return Response(q.ErrorAnswer(error=exc.detail, detail=detail), status_code=exc.status_code)


def _not_reached(_: Request[Any, Any, Any], exc: PositionNotReached) -> Response[q.ErrorAnswer]:
    answer = q.ErrorAnswer(error=str(exc), position=exc.position)
    return Response(answer, status_code=HTTP_503_SERVICE_UNAVAILABLE)


def _not_loaded(_: Request[Any, Any, Any], exc: NotLoaded) -> Response[q.ErrorAnswer]:
    answer = q.ErrorAnswer(error="starting", detail="the read model is being loaded")
    return Response(answer, status_code=HTTP_503_SERVICE_UNAVAILABLE)


def _stale(_: Request[Any, Any, Any], exc: StaleRefused) -> Response[q.ErrorAnswer]:
    answer = q.ErrorAnswer(
        error="stale", detail=str(exc), position=exc.position, lag_seconds=exc.lag_seconds
    )
    return Response(answer, status_code=HTTP_503_SERVICE_UNAVAILABLE)


def _forbidden(_: Request[Any, Any, Any], exc: Forbidden) -> Response[q.ErrorAnswer]:
    return Response(q.ErrorAnswer(error="forbidden", detail=str(exc)), status_code=403)


def _unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[q.ErrorAnswer]:
    answer = q.ErrorAnswer(error="internal error")
    return Response(answer, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


def query_context(app: ASGIApp) -> QueryContext:
    """The query context of an app from ``served`` (or ``create_app``)."""
    litestar: Any = app
    while isinstance(litestar, FastCheck | Gate):
        litestar = litestar.app
    return context_of(litestar.state)


def served(app: Litestar) -> ASGIApp:
    """The app as the service serves it: plain checks answered before Litestar's own layers
    (exception middleware, router); the same lean path also sits inside the app as
    middleware, so an app from ``create_app`` answers exactly as the served one. With
    callers, the gate stands between the lean path and the app."""
    context = context_of(app.state)
    callers, counts = context.callers, context.caller_counts
    if callers is None:
        return FastCheck(app, context.live, context.clock, context)
    gated = Gate(app, callers, counts)
    return FastCheck(gated, context.live, context.clock, context, callers, counts)


def create_app(
    live: LiveReadModel,
    *,
    clock: Clock = utc_now,
    min_position_wait: float = 5.0,
    ready_lag_seconds: float = 5.0,
    event_log: SqlViewStore | None = None,
    freshness: Freshness | None = None,
    refuse_when_stale: bool = False,
    callers: Callers | None = None,
    caller_counts: CallerCounts = CALLER_COUNTS,
) -> Litestar:
    """The app; with ``callers`` every query needs a caller (``served`` puts the gate in
    front; without it no query is answered)."""
    context = QueryContext(live, clock, min_position_wait)
    context.freshness = freshness or Freshness(ready_lag_seconds)
    context.refuse_when_stale = refuse_when_stale
    context.event_log = event_log
    context.callers = callers
    context.caller_counts = caller_counts
    handlers = [check, verify, key_permissions, key_history, organization_keys, health, ready]
    return Litestar(
        route_handlers=handlers,
        state=State({"queries": context}),
        middleware=[lambda app: FastCheck(app, live, clock, context, callers)],
        guards=[authorize],
        before_request=reject_unknown_query_parameters,
        exception_handlers={
            Forbidden: _forbidden,
            HTTPException: _http_error,
            PositionNotReached: _not_reached,
            StaleRefused: _stale,
            NotLoaded: _not_loaded,
            Exception: _unexpected,
        },
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="API keys projections",
            version="1.0.0",
            components=Components(
                security_schemes={
                    "callerToken": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="A caller token (`apikeys new-caller`), needed on /v1/* "
                        "when the service has a callers file (APIKEYS_CALLERS_FILE)",
                    )
                }
            ),
        ),
        logging_config=None,
        debug=False,
    )
