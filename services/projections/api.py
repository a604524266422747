"""HTTP queries over the live read model (read-only). Tokens are hashed at once and never logged."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ASGIApp

from contracts import audit as a
from contracts import queries as q
from contracts.tokens import checksum_ok, has_prefix, token_sha256
from services.projections import audit_queries, rules, verification
from services.projections.answers import permissions_answer
from services.projections.fast_check import FastCheck
from services.projections.freshness import Freshness
from services.projections.live import LiveReadModel, NotLoaded, PositionNotReached
from services.projections.views import SqlViewStore

MAX_BODY_BYTES = 8 * 1024
_ID = r"^[^\s\x00-\x1f\x7f]{1,200}$"
_PERMISSION = r"^[^\x00-\x1f\x7f]{1,200}$"
Id = Annotated[str, QueryParameter(pattern=_ID, min_length=1, max_length=200)]
PathId = Annotated[str, Parameter(pattern=_ID, min_length=1, max_length=200)]
PermissionName = Annotated[str, QueryParameter(pattern=_PERMISSION, min_length=1, max_length=200)]
MinPosition = Annotated[int | None, QueryParameter(ge=0, le=2**63 - 1)]
ItemOwner = Annotated[Literal["key"] | None, QueryParameter()]
AsOf = Annotated[datetime | None, QueryParameter(description="RFC 3339 instant")]
AfterPosition = Annotated[int, QueryParameter(ge=0, le=2**63 - 1)]
Limit = Annotated[int, QueryParameter(ge=1, le=1000)]
Explain = Annotated[bool, QueryParameter(description="add the chain behind each reason")]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class StaleRefused(Exception):
    """APIKEYS_REFUSE_WHEN_STALE: a check or verify is refused rather than answered late."""

    def __init__(self, lag_seconds: float, position: int) -> None:
        super().__init__(f"the projection is {lag_seconds:.1f} s behind what is stored")
        self.lag_seconds = lag_seconds
        self.position = position


AnswerT = TypeVar("AnswerT", bound=q.Answer)


class QueryContext:
    def __init__(self, live: LiveReadModel, clock: Clock, min_position_wait: float) -> None:
        self.live = live
        self.clock = clock
        self.min_position_wait = min_position_wait
        self.freshness = Freshness(5.0)
        self.refuse_when_stale = False
        self.event_log: SqlViewStore | None = None

    def fresh(self, answer: AnswerT) -> AnswerT:
        """The answer, marked stale with its lag when the model is behind."""
        lag = self.freshness.stale_lag(self.live.position)
        if lag is not None:
            answer.stale = True
            answer.lag_seconds = lag
        return answer

    def refuse_if_stale(self) -> None:
        if self.refuse_when_stale:
            lag = self.freshness.stale_lag(self.live.position)
            if lag is not None:
                raise StaleRefused(lag, self.live.position)

    def audit_store(self) -> SqlViewStore:
        if self.event_log is None:
            raise HTTPException("this service has no event log store", status_code=501)
        return self.event_log

    async def model_at(self, min_position: int | None) -> rules.ReadModel:
        await self.live.wait_for(min_position, self.min_position_wait)
        return self.live.model


def _context(state: State) -> QueryContext:
    context: QueryContext = state.queries
    return context


def _queries(*names: str) -> dict[str, Any]:
    return {"query_parameters": frozenset(names)}


@get(
    "/v1/check",
    opt=_queries(
        "key_id", "permission", "location_id", "item_owner", "min_position", "as_of", "explain"
    ),
)
async def check(
    state: State,
    key_id: Id,
    permission: PermissionName,
    location_id: Id,
    item_owner: ItemOwner = None,
    min_position: MinPosition = None,
    as_of: AsOf = None,
    explain: Explain = False,
) -> a.ExplainedCheckAnswer:
    context = _context(state)
    model = await context.model_at(min_position)
    if as_of is None:
        context.refuse_if_stale()
    if as_of is not None or explain:
        request = audit_queries.CheckRequest(
            key_id, permission, location_id, item_owner == "key", as_of, explain
        )
        return context.fresh(
            await asyncio.to_thread(
                audit_queries.check, context.audit_store(), model, request, context.clock()
            )
        )
    decision = rules.check(
        model, key_id, permission, location_id, item_owner == "key", context.clock()
    )
    return context.fresh(
        a.ExplainedCheckAnswer(
            allowed=decision.allowed,
            reasons=decision.reasons,
            denied_because=decision.denied_because,
            position=model.position,
        )
    )


@post("/v1/verify", status_code=200, opt=_queries("min_position"))
async def verify(
    state: State, data: JSONBody[q.VerifyRequest], min_position: MinPosition = None
) -> q.VerifyAnswer:
    context = _context(state)
    model = await context.model_at(min_position)
    context.refuse_if_stale()
    token = data.token
    if has_prefix(token) and not checksum_ok(token):
        return q.VerifyAnswer(
            valid=False,
            code="MALFORMED",
            key_id=None,
            organization_id=None,
            position=model.position,
        )
    now = context.clock()
    found = verification.verify_secret(model, token_sha256(token), now)
    allowed = None
    if data.permission is not None and data.location_id is not None:
        allowed = (
            found.code == "VALID"
            and rules.check(
                model, found.key_id or "", data.permission, data.location_id, False, now
            ).allowed
        )
    return context.fresh(
        q.VerifyAnswer(
            valid=found.code == "VALID",
            code=found.code,
            key_id=found.key_id,
            organization_id=found.organization_id,
            allowed=allowed,
            position=model.position,
        )
    )


@get("/v1/keys/{key_id:str}/permissions", opt=_queries("min_position", "as_of"))
async def key_permissions(
    state: State, key_id: PathId, min_position: MinPosition = None, as_of: AsOf = None
) -> q.KeyPermissionsAnswer:
    context = _context(state)
    model = await context.model_at(min_position)
    if as_of is not None:
        store = context.audit_store()
        return context.fresh(
            await asyncio.to_thread(audit_queries.permissions_as_of, store, key_id, as_of)
        )
    return context.fresh(permissions_answer(model, key_id, context.clock()))


@get("/v1/keys/{key_id:str}/history", opt=_queries("after_position", "limit", "min_position"))
async def key_history(
    state: State,
    key_id: PathId,
    after_position: AfterPosition = 0,
    limit: Limit = 100,
    min_position: MinPosition = None,
) -> a.KeyHistoryAnswer:
    """The key's events in order (deleted keys included), a page at a time."""
    context = _context(state)
    model = await context.model_at(min_position)
    store = context.audit_store()
    return context.fresh(
        await asyncio.to_thread(
            audit_queries.history, store, key_id, after_position, limit, model.position
        )
    )


@get(
    "/v1/organizations/{organization_id:str}/keys",
    opt=_queries("permission", "location_id", "min_position"),
)
async def organization_keys(
    state: State,
    organization_id: PathId,
    permission: PermissionName,
    location_id: Id,
    min_position: MinPosition = None,
) -> q.OrganizationKeysAnswer:
    context = _context(state)
    model = await context.model_at(min_position)
    holders = rules.keys_with_permission(
        model, organization_id, permission, location_id, context.clock()
    )
    return context.fresh(
        q.OrganizationKeysAnswer(
            organization_id=organization_id,
            permission=permission,
            location_id=location_id,
            keys=[
                q.KeyHolder(key_id=key_id, name=model.keys[key_id].state.name, reasons=reasons)
                for key_id, reasons in holders
            ],
            position=model.position,
        )
    )


@get("/health", opt=_queries())
async def health(state: State) -> q.HealthAnswer:
    return q.HealthAnswer(status="ok", position=_context(state).live.position)


@get("/ready", opt=_queries())
async def ready(state: State) -> Response[q.HealthAnswer]:
    """200 while the events stream and the view store answer and the model is within the
    ready lag of what has been stored."""
    context = _context(state)
    position = context.live.position
    freshness = context.freshness
    reason = freshness.not_ready_because(position)
    if not context.live.loaded or context.live.caught_up_at is None:
        reason = "starting"
    answer = q.HealthAnswer(
        status="not_ready" if reason else "ready",
        position=position,
        caught_up_seconds_ago=context.live.caught_up_seconds_ago(),
        stored_position=freshness.lag.stored_position,
        lag_seconds=freshness.lag_seconds(position),
        reason=reason,
    )
    return Response(answer, status_code=HTTP_503_SERVICE_UNAVAILABLE if reason else 200)


async def reject_unknown_query_parameters(request: Request[Any, Any, Any]) -> None:
    allowed = request.route_handler.opt.get("query_parameters")
    if allowed is None:
        return
    for name in request.query_params:
        if name not in allowed:
            raise ValidationException(f"unknown query parameter: {name[:50]}")
        if len(request.query_params.getall(name)) > 1:
            raise ValidationException(f"query parameter given more than once: {name}")


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


def _unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[q.ErrorAnswer]:
    answer = q.ErrorAnswer(error="internal error")
    return Response(answer, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


def query_context(app: ASGIApp) -> QueryContext:
    """The query context of an app from ``served`` (or ``create_app``)."""
    litestar: Any = app.app if isinstance(app, FastCheck) else app
    return _context(litestar.state)


def served(app: Litestar) -> ASGIApp:
    """The app as the service serves it: plain checks answered before Litestar's own layers
    (exception middleware, router: ~10% of a check); the same lean path also sits inside the
    app as middleware, so an app from ``create_app`` answers exactly as the served one."""
    context = _context(app.state)
    return FastCheck(app, context.live, context.clock, context)


def create_app(
    live: LiveReadModel,
    *,
    clock: Clock = utc_now,
    min_position_wait: float = 5.0,
    ready_lag_seconds: float = 5.0,
    event_log: SqlViewStore | None = None,
    freshness: Freshness | None = None,
    refuse_when_stale: bool = False,
) -> Litestar:
    context = QueryContext(live, clock, min_position_wait)
    context.freshness = freshness or Freshness(ready_lag_seconds)
    context.refuse_when_stale = refuse_when_stale
    context.event_log = event_log
    handlers = [check, verify, key_permissions, key_history, organization_keys, health, ready]
    return Litestar(
        route_handlers=handlers,
        state=State({"queries": context}),
        middleware=[lambda app: FastCheck(app, live, clock, context)],
        before_request=reject_unknown_query_parameters,
        exception_handlers={
            HTTPException: _http_error,
            PositionNotReached: _not_reached,
            StaleRefused: _stale,
            NotLoaded: _not_loaded,
            Exception: _unexpected,
        },
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(title="API keys projections", version="1.0.0"),
        logging_config=None,
        debug=False,
    )
