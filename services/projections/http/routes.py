"""The query handlers: checks, verification, a key's permissions and history, an organization's
keys, health and readiness. Tokens are hashed at once and never logged."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_503_SERVICE_UNAVAILABLE

from contracts import audit as a
from contracts import queries as q
from contracts.common import ID_MAX
from contracts.tokens import checksum_ok, has_prefix, token_sha256
from services.common import metrics
from services.projections.audit import queries as audit_queries
from services.projections.http.context import (
    QueryContext,
    caller_in,
    context_of,
    visible,
    visible_key,
)
from services.projections.http.responses import ERRORS, SECURED, error_spec
from services.projections.model import queries as model_queries
from services.projections.model.answers import (
    CURSOR_MAX,
    CURSOR_PATTERN,
    check_answer,
    decode_cursor,
    permissions_answer,
)
from services.projections.model.listing import MAX_PAGE_ENTRIES, PAGE_ENTRIES
from services.projections.model.state import ReadModel
from services.projections.model.verification import verify_secret
from services.projections.runtime.callers import Caller

# explicit ranges, not \s: Python's \s also matches U+0085 and other Unicode spaces, the
# document's (ECMA) regex dialect does not, and the two must refuse the same ids
_ID = rf"^[^\x00-\x20\x7f-\x9f]{{1,{ID_MAX}}}$"
_PERMISSION = r"^[^\x00-\x1f\x7f]{1,200}$"
# the largest integer a JSON reader is sure to hold exactly (positions never come near it)
MAX_POSITION = 2**53 - 1
Id = Annotated[str, QueryParameter(pattern=_ID, min_length=1, max_length=ID_MAX)]
PathId = Annotated[str, Parameter(pattern=_ID, min_length=1, max_length=ID_MAX)]
PermissionName = Annotated[str, QueryParameter(pattern=_PERMISSION, min_length=1, max_length=200)]
# gt=-1 rather than ge=0: the OpenAPI generator drops a bound of 0 (falsy), and the document
# must say that a negative position is refused
MinPosition = Annotated[
    int | None,
    QueryParameter(
        gt=-1,
        le=MAX_POSITION,
        description="answer once this position is applied; 503 if it is not within "
        "APIKEYS_MIN_POSITION_WAIT seconds",
    ),
]
ItemOwner = Annotated[Literal["key"] | None, QueryParameter()]
AsOf = Annotated[datetime | None, QueryParameter(description="RFC 3339 instant")]
AfterPosition = Annotated[int, QueryParameter(gt=-1, le=MAX_POSITION)]
Limit = Annotated[int, QueryParameter(ge=1, le=1000)]
PageSize = Annotated[
    int,
    QueryParameter(ge=1, le=MAX_PAGE_ENTRIES, description="entries (permission at a location)"),
]
PageCursor = Annotated[
    str | None,
    QueryParameter(
        pattern=CURSOR_PATTERN,
        max_length=CURSOR_MAX,
        description="the previous page's next_cursor: `<location id> <permission>`, where the "
        "next page starts",
    ),
]
Explain = Annotated[bool, QueryParameter(description="add the chain behind each reason")]


def _queries(*names: str, scope: str | None = None) -> dict[str, Any]:
    """The handler's options: the query parameters it takes, and with a callers file the
    scope a caller needs (``gate.authorize``)."""
    options: dict[str, Any] = {"query_parameters": frozenset(names)}
    if scope is not None:
        options["scope"] = scope
    return options


@get(
    "/v1/check",
    opt=_queries(
        "key_id",
        "permission",
        "location_id",
        "item_owner",
        "min_position",
        "as_of",
        "explain",
        scope="check",
    ),
    **SECURED,
)
async def check(
    request: Request[Any, Any, Any],
    state: State,
    key_id: Id,
    permission: PermissionName,
    location_id: Id,
    item_owner: ItemOwner = None,
    min_position: MinPosition = None,
    as_of: AsOf = None,
    explain: Explain = False,
) -> a.ExplainedCheckAnswer:
    context = context_of(state)
    model = await context.model_at(min_position)
    if as_of is None:
        context.refuse_if_stale()
    key = visible_key(caller_in(request.scope), model, key_id)
    if as_of is not None or explain:
        asked = audit_queries.CheckRequest(
            key, permission, location_id, item_owner == "key", as_of, explain
        )
        return context.fresh(
            await asyncio.to_thread(
                audit_queries.check, context.audit_store(), model, asked, context.clock()
            )
        )
    started = time.perf_counter()
    decision = model_queries.check(
        model, key, permission, location_id, item_owner == "key", context.clock()
    )
    metrics.count_check(started, decision.allowed, decision.denied_because)
    return context.fresh(check_answer(decision, model.position))


@post(
    "/v1/verify",
    status_code=200,
    opt=_queries("min_position", scope="verify"),
    responses={**SECURED["responses"], 413: error_spec("body over 8 KiB")},
    security=SECURED["security"],
)
async def verify(
    request: Request[Any, Any, Any],
    state: State,
    data: JSONBody[q.VerifyRequest],
    min_position: MinPosition = None,
) -> q.VerifyAnswer:
    context = context_of(state)
    model = await context.model_at(min_position)
    context.refuse_if_stale()
    started = time.perf_counter()
    answer = _verify(context, model, data, caller_in(request.scope))
    metrics.verify_seconds.observe(time.perf_counter() - started)
    metrics.verifies.labels(answer.code).inc()
    return context.fresh(answer)


def _verify(
    context: QueryContext, model: ReadModel, data: q.VerifyRequest, caller: Caller | None
) -> q.VerifyAnswer:
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
    found = visible(caller, verify_secret(model, token_sha256(token), now))
    allowed = None
    if data.permission is not None and data.location_id is not None:
        allowed = (
            found.code == "VALID"
            and model_queries.check(
                model, found.key_id or "", data.permission, data.location_id, False, now
            ).allowed
        )
    return q.VerifyAnswer(
        valid=found.code == "VALID",
        code=found.code,
        key_id=found.key_id,
        organization_id=found.organization_id,
        allowed=allowed,
        position=model.position,
    )


@get(
    "/v1/keys/{key_id:str}/permissions",
    opt=_queries("min_position", "as_of", "limit", "cursor", scope="check"),
    description=(
        "A page of the key's permissions, by location then permission: at most `limit` "
        "entries, fewer when the page's work budget ends it first. While `next_cursor` is "
        "not null, pass it as `cursor` for the next page."
    ),
    **SECURED,
)
async def key_permissions(
    request: Request[Any, Any, Any],
    state: State,
    key_id: PathId,
    min_position: MinPosition = None,
    as_of: AsOf = None,
    limit: PageSize = PAGE_ENTRIES,
    cursor: PageCursor = None,
) -> q.KeyPermissionsAnswer:
    """A page of the key's permissions, by location then permission; ``next_cursor`` asks
    for the next page (a page may hold fewer than ``limit`` entries while more follow)."""
    context = context_of(state)
    try:
        after = None if cursor is None else decode_cursor(cursor)
    except ValueError as error:
        raise ValidationException(f"cursor: {error}") from None
    model = await context.model_at(min_position)
    key = visible_key(caller_in(request.scope), model, key_id)
    if as_of is not None:
        store = context.audit_store()
        answer = await asyncio.to_thread(
            audit_queries.permissions_as_of, store, key, as_of, after, limit
        )
    else:
        answer = permissions_answer(model, key, context.clock(), after, limit)
    answer.key_id = key_id  # as asked (a key the caller may not see is answered as unknown)
    return context.fresh(answer)


@get(
    "/v1/keys/{key_id:str}/history",
    opt=_queries("after_position", "limit", "min_position", "as_of", scope="audit"),
    description=(
        "The key's events in order (deleted keys included), a page at a time; with `as_of`, "
        "only those that occurred at or before that instant."
    ),
    **SECURED,
)
async def key_history(
    request: Request[Any, Any, Any],
    state: State,
    key_id: PathId,
    after_position: AfterPosition = 0,
    limit: Limit = 100,
    min_position: MinPosition = None,
    as_of: AsOf = None,
) -> a.KeyHistoryAnswer:
    """The key's events in order (deleted keys included), a page at a time; with ``as_of``,
    the history up to and including that instant."""
    context = context_of(state)
    model = await context.model_at(min_position)
    store = context.audit_store()
    key = visible_key(caller_in(request.scope), model, key_id)
    answer = await asyncio.to_thread(
        audit_queries.history, store, key, after_position, limit, model.position, as_of
    )
    answer.key_id = key_id  # as asked (a key the caller may not see is answered as unknown)
    return context.fresh(answer)


@get(
    "/v1/organizations/{organization_id:str}/keys",
    opt=_queries("permission", "location_id", "min_position", scope="list"),
    **SECURED,
)
async def organization_keys(
    state: State,
    organization_id: PathId,
    permission: PermissionName,
    location_id: Id,
    min_position: MinPosition = None,
) -> q.OrganizationKeysAnswer:
    context = context_of(state)
    model = await context.model_at(min_position)
    holders = model_queries.keys_with_permission(
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


@get("/metrics", opt=_queries(), include_in_schema=False)
async def metrics_endpoint(state: State) -> Response[bytes]:
    """Prometheus metrics; the lag and position gauges are read at the scrape."""
    context = context_of(state)
    position = context.live.position
    metrics.projection_position.set(position)
    metrics.projection_lag.set(context.freshness.lag_seconds(position) or 0.0)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


WORKER_HEADER = "x-apikeys-worker"


@get("/health", opt=_queries(), responses={405: ERRORS[405]})
async def health(state: State) -> Response[q.HealthAnswer]:
    """Alive; with several HTTP workers, the header ``X-Apikeys-Worker`` names the one that
    answered (its pid)."""
    context = context_of(state)
    answer = q.HealthAnswer(status="ok", position=context.live.position)
    worker = context.worker
    return Response(answer, headers=None if worker is None else {WORKER_HEADER: worker})


@get(
    "/ready",
    opt=_queries(),
    responses={
        405: ERRORS[405],
        503: ResponseSpec(
            q.HealthAnswer, description="not ready (reason)", generate_examples=False
        ),
    },
)
async def ready(state: State) -> Response[q.HealthAnswer]:
    """200 while the events stream and the view store answer and the model is within the
    ready lag of what has been stored."""
    context = context_of(state)
    position = context.live.position
    freshness = context.freshness
    reason = freshness.not_ready_because(position)
    missing = freshness.missing
    if missing is None and (not context.live.loaded or context.live.caught_up_at is None):
        reason = "starting"
    answer = q.HealthAnswer(
        status="not_ready" if reason else "ready",
        position=position,
        caught_up_seconds_ago=context.live.caught_up_seconds_ago(),
        stored_position=freshness.lag.stored_position,
        lag_seconds=freshness.lag_seconds(position),
        reason=reason,
        missing=None
        if missing is None
        else q.MissingEvents(after_position=missing[0], up_to_position=missing[1]),
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
