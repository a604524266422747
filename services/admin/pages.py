"""The organization's API Keys page: the list (with its search box and Create API Key) and the
New API Key window; creating a key shows its token once."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template

from client import ApiKeysClient
from contracts import directory as d
from services.admin.access import Admin, admin_or_refusal, reader_of
from services.admin.edits import KeyForm
from services.admin.messages import field_errors
from services.admin.sender import attempt, new_command_id, refusal

After = Annotated[int | None, Parameter(query="after", ge=0, required=False)]
NO_STORE = {"Cache-Control": "no-store"}


def client_of(request: Request[Any, Any, Any]) -> ApiKeysClient:
    client: ApiKeysClient = request.app.state.client
    return client


async def form_lists(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    form = await request.form()
    return {name: [str(v) for v in form.getall(name)] for name in form}


def matches(key: d.KeyDetails, admin: Admin, search: str) -> bool:
    if not search:
        return True
    paths, roles = admin.location_paths(), admin.role_names()
    words = [key.name, key.key_id, key.created_by or "", key.status]
    words += [paths.get(x, x) for x in key.location_ids]
    words += [roles.get(x, x) for x in key.role_ids]
    needle = search.casefold()
    return any(needle in word.casefold() for word in words)


async def list_page(
    request: Request[Any, Any, Any],
    admin: Admin,
    *,
    search: str = "",
    min_position: int | None = None,
    new_form: KeyForm | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    answer = await reader_of(request).keys(admin.org.organization_id, min_position)
    keys = [k for k in answer.keys if matches(k, admin, search.strip())]
    return Template(
        template_name="keys.html",
        context={
            "admin": admin,
            "org": admin.org,
            "keys": keys,
            "total": len(answer.keys),
            "search": search,
            "paths": admin.location_paths(),
            "role_names": admin.role_names(),
            "form": new_form or KeyForm(),
            "window_open": new_form is not None,
            "errors": errors or {},
        },
        status_code=status_code,
    )


@get("/orgs/{organization_id:str}/keys")
async def keys_page(
    request: Request[Any, Any, Any],
    organization_id: str,
    after: After = None,
    q: str = "",
    new: bool = False,
) -> Template:
    admin = await admin_or_refusal(request, organization_id, after)
    if not isinstance(admin, Admin):
        return admin
    new_form = KeyForm() if new else None
    return await list_page(request, admin, search=q[:200], min_position=after, new_form=new_form)


@post("/orgs/{organization_id:str}/keys")
async def create_key(request: Request[Any, Any, Any], organization_id: str) -> Template:
    admin = await admin_or_refusal(request, organization_id)
    if not isinstance(admin, Admin):
        return admin
    form = KeyForm.parse(await form_lists(request))
    created = await attempt(
        client_of(request).create_key(
            organization_id,
            admin.user,
            form.name,
            form.location_ids,
            form.role_ids,
            switched_off=form.cells_off(),
            command_id=new_command_id(),
        )
    )
    error = created if isinstance(created, str) else refusal(created.result)
    if error is not None or isinstance(created, str):
        status = 504 if error == "timeout" else 422
        errors = field_errors(error or "rejected")
        return await list_page(request, admin, new_form=form, errors=errors, status_code=status)
    key_id, result = created.key_id, created.result
    key = await reader_of(request).key(key_id, result.position)
    return Template(
        template_name="token.html",
        context={
            "admin": admin,
            "org": admin.org,
            "key": key,
            "key_id": key_id,
            "token": created.token,
            "created": True,
            "paths": admin.location_paths(),
            "position": result.position,
        },
        headers=NO_STORE,
    )


@get("/")
async def home() -> Template:
    return Template(template_name="home.html")


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def found(url: str) -> Redirect:
    return Redirect(url, status_code=303)


HANDLERS = [keys_page, create_key, home, health]
