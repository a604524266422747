"""The read endpoints of administration pages: an organization's directory, its keys with
their details, and one key's details. Secret hashes are never part of these answers."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException

from contracts import directory as d
from services.projections.http.context import caller_in, context_of, visible_key
from services.projections.http.responses import SECURED, error_spec
from services.projections.http.routes import MinPosition, PathId
from services.projections.model.directory import (
    key_details,
    organization_answer,
    organization_keys_answer,
)

# the query parameters each handler takes; with callers, the scope it needs (the admin
# service's caller token holds `list`)
LISTING = {"query_parameters": frozenset({"min_position"}), "scope": "list"}


@get("/v1/organizations/{organization_id:str}", opt=LISTING, **SECURED)
async def organization(
    state: State, organization_id: PathId, min_position: MinPosition = None
) -> d.OrganizationAnswer:
    """The organization's API module, API administrators, locations (with their paths) and
    roles; ``known`` is false for an organization never seen."""
    context = context_of(state)
    model = await context.model_at(min_position)
    return context.fresh(organization_answer(model, organization_id))


@get("/v1/organizations/{organization_id:str}/api-keys", opt=LISTING, **SECURED)
async def organization_api_keys(
    state: State, organization_id: PathId, min_position: MinPosition = None
) -> d.OrganizationKeyListAnswer:
    """Every key of the organization that is not deleted, with its details, by name."""
    context = context_of(state)
    model = await context.model_at(min_position)
    return context.fresh(organization_keys_answer(model, organization_id, context.clock()))


@get(
    "/v1/keys/{key_id:str}",
    opt=LISTING,
    security=SECURED["security"],
    responses={**SECURED["responses"], 404: error_spec("no such key (`unknown_key`)")},
)
async def key(
    request: Request[Any, Any, Any], state: State, key_id: PathId, min_position: MinPosition = None
) -> d.KeyDetailsAnswer:
    """One key's details (deleted keys too, with status ``deleted``); 404 ``unknown_key``, also
    for a key of an organization the caller does not see."""
    context = context_of(state)
    model = await context.model_at(min_position)
    shown = visible_key(caller_in(request.scope), model, key_id)
    details = key_details(model, shown, context.clock())
    if details is None:
        raise NotFoundException("unknown_key")
    return context.fresh(d.KeyDetailsAnswer(key=details, position=model.position))


HANDLERS = [organization, organization_api_keys, key]
