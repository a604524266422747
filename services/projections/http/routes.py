"""The query handlers: checks, verification, a key's permissions and history, an organization's
keys, health and readiness. Tokens are hashed at once and never logged."""

from __future__ import annotations

import asyncio
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
from services.projections.audit import queries as audit_queries
from services.projections.http.context import caller_in, context_of, visible, visible_key
from services.projections.model import queries as model_queries
from services.projections.model.answers import check_answer, permissions_answer
from services.projections.model.verification import verify_secret

_ID = rf"^[^\s\x00-\x1f\x7f]{{1,{ID_MAX}}}$"
_PERMISSION = r"^[^\x00-\x1f\x7f]{1,200}$"
Id = Annotated[str, QueryParameter(pattern=_ID, min_length=1, max_length=ID_MAX)]
PathId = Annotated[str, Parameter(pattern=_ID, min_length=1, max_length=ID_MAX)]
PermissionName = Annotated[str, QueryParameter(pattern=_PERMISSION, min_length=1, max_length=200)]
MinPosition = Annotated[int | None, QueryParameter(ge=0, le=2**63 - 1)]
ItemOwner = Annotated[Literal["key"] | None, QueryParameter()]
AsOf = Annotated[datetime | None, QueryParameter(description="RFC 3339 instant")]
AfterPosition = Annotated[int, QueryParameter(ge=0, le=2**63 - 1)]
Limit = Annotated[int, QueryParameter(ge=1, le=1000)]
Explain = Annotated[bool, QueryParameter(description="add the chain behind each reason")]


def _queries(*names: str, scope: str | None = None) -> dict[str, Any]:
    """The handler's options: the query parameters it takes, and with a callers file the
    scope a caller needs (``gate.authorize``)."""
    options: dict[str, Any] = {"query_parameters": frozenset(names)}
    if scope is not None:
        options["scope"] = scope
    return options


_ERROR_RESPONSES = {
    401: ResponseSpec(
        q.ErrorAnswer,
        description="With a callers file (APIKEYS_CALLERS_FILE): no caller token, or an unknown "
        "one (`unauthenticated`)",
    ),
    403: ResponseSpec(
        q.ErrorAnswer,
        description="With a callers file: the caller lacks the scope the query needs (`audit` "
        "for `as_of` and `explain`), or may not ask about the organization (`forbidden`)",
    ),
}
_SECURED: dict[str, Any] = {"responses": _ERROR_RESPONSES, "security": [{"callerToken": []}]}


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
    **_SECURED,
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
    decision = model_queries.check(
        model, key, permission, location_id, item_owner == "key", context.clock()
    )
    return context.fresh(check_answer(decision, model.position))


@post("/v1/verify", status_code=200, opt=_queries("min_position", scope="verify"), **_SECURED)
async def verify(
    request: Request[Any, Any, Any],
    state: State,
    data: JSONBody[q.VerifyRequest],
    min_position: MinPosition = None,
) -> q.VerifyAnswer:
    context = context_of(state)
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
    found = visible(caller_in(request.scope), verify_secret(model, token_sha256(token), now))
    allowed = None
    if data.permission is not None and data.location_id is not None:
        allowed = (
            found.code == "VALID"
            and model_queries.check(
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


@get(
    "/v1/keys/{key_id:str}/permissions",
    opt=_queries("min_position", "as_of", scope="check"),
    **_SECURED,
)
async def key_permissions(
    request: Request[Any, Any, Any],
    state: State,
    key_id: PathId,
    min_position: MinPosition = None,
    as_of: AsOf = None,
) -> q.KeyPermissionsAnswer:
    context = context_of(state)
    model = await context.model_at(min_position)
    key = visible_key(caller_in(request.scope), model, key_id)
    if as_of is not None:
        store = context.audit_store()
        answer = await asyncio.to_thread(audit_queries.permissions_as_of, store, key, as_of)
    else:
        answer = permissions_answer(model, key, context.clock())
    answer.key_id = key_id  # as asked (a key the caller may not see is answered as unknown)
    return context.fresh(answer)


@get(
    "/v1/keys/{key_id:str}/history",
    opt=_queries("after_position", "limit", "min_position", scope="audit"),
    **_SECURED,
)
async def key_history(
    request: Request[Any, Any, Any],
    state: State,
    key_id: PathId,
    after_position: AfterPosition = 0,
    limit: Limit = 100,
    min_position: MinPosition = None,
) -> a.KeyHistoryAnswer:
    """The key's events in order (deleted keys included), a page at a time."""
    context = context_of(state)
    model = await context.model_at(min_position)
    store = context.audit_store()
    key = visible_key(caller_in(request.scope), model, key_id)
    answer = await asyncio.to_thread(
        audit_queries.history, store, key, after_position, limit, model.position
    )
    answer.key_id = key_id  # as asked (a key the caller may not see is answered as unknown)
    return context.fresh(answer)


@get(
    "/v1/organizations/{organization_id:str}/keys",
    opt=_queries("permission", "location_id", "min_position", scope="list"),
    **_SECURED,
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


@get("/health", opt=_queries())
async def health(state: State) -> q.HealthAnswer:
    return q.HealthAnswer(status="ok", position=context_of(state).live.position)


@get("/ready", opt=_queries())
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
