"""A key's page: its details, the edit form (the New API Key window's controls), rotate,
disable / enable, delete (after a confirmation), its history and the "why" of a permission."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template

from contracts import audit as a
from contracts import commands as c
from contracts import directory as d
from services.admin.access import Admin, admin_or_refusal, reader_of
from services.admin.describe import describe
from services.admin.edits import KeyForm, edit_commands
from services.admin.messages import field_errors
from services.admin.pages import NO_STORE, After, client_of, form_lists, found
from services.admin.sender import attempt, new_command_id, refusal

GRACE_CHOICES = {
    0: "none: the old token stops at once",
    3600: "1 hour",
    86400: "1 day",
    604800: "7 days",
}
Text = Annotated[str, Parameter(max_length=200)]


def key_url(organization_id: str, key_id: str, position: int | None = None) -> str:
    from urllib.parse import quote

    url = f"/orgs/{quote(organization_id, safe='')}/keys/{quote(key_id, safe='')}"
    return url if position is None else f"{url}?after={position}"


async def admin_and_key(
    request: Request[Any, Any, Any], organization_id: str, key_id: str, after: int | None = None
) -> tuple[Admin, d.KeyDetails] | Template:
    """The administrator and the organization's key, or the page saying why not (a refusal,
    or 404 for a key this organization does not have)."""
    admin = await admin_or_refusal(request, organization_id, after)
    if not isinstance(admin, Admin):
        return admin
    key = await reader_of(request).key(key_id, after)
    if key is None or key.organization_id != admin.org.organization_id:
        return Template(
            template_name="missing.html",
            context={"admin": admin, "org": admin.org, "key_id": key_id},
            status_code=404,
        )
    return admin, key


async def key_page_of(
    request: Request[Any, Any, Any],
    admin: Admin,
    key: d.KeyDetails,
    *,
    form: KeyForm | None = None,
    errors: dict[str, str] | None = None,
    why: a.ExplainedCheckAnswer | None = None,
    asked: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    history = await reader_of(request).history(key.key_id)
    permissions = sorted(
        {p.permission for r in admin.org.roles if r.role_id in key.role_ids for p in r.permissions}
    )
    return Template(
        template_name="key.html",
        context={
            "admin": admin,
            "org": admin.org,
            "key": key,
            "form": form or KeyForm.of_key(key),
            "errors": errors or {},
            "paths": admin.location_paths(),
            "role_names": admin.role_names(),
            "history": list(reversed(history.entries)),
            "permissions": permissions,
            "why": why,
            "asked": asked,
            "grace_choices": GRACE_CHOICES,
            "describe": describe,
        },
        status_code=status_code,
    )


@get("/orgs/{organization_id:str}/keys/{key_id:str}")
async def key_page(
    request: Request[Any, Any, Any],
    organization_id: str,
    key_id: str,
    after: After = None,
    permission: Text = "",
    location: Text = "",
) -> Template:
    found_pair = await admin_and_key(request, organization_id, key_id, after)
    if not isinstance(found_pair, tuple):
        return found_pair
    admin, key = found_pair
    why, asked = None, None
    if permission and location:
        asked = (permission, location)
        why = await reader_of(request).explain(key_id, permission, location)
    return await key_page_of(request, admin, key, why=why, asked=asked)


async def _send_all(
    request: Request[Any, Any, Any], commands: list[c.KeyCommand]
) -> tuple[int | None, str | None]:
    """Send in order, awaiting each result; stop at the first refusal. (position, error)."""
    position = None
    for command in commands:
        result = await attempt(client_of(request).send(command))
        if isinstance(result, str):
            return position, result
        error = refusal(result)
        if error is not None:
            return position, error
        position = result.position if result.position is not None else position
    return position, None


@post("/orgs/{organization_id:str}/keys/{key_id:str}/edit")
async def edit_key(
    request: Request[Any, Any, Any], organization_id: str, key_id: str
) -> Template | Redirect:
    found_pair = await admin_and_key(request, organization_id, key_id)
    if not isinstance(found_pair, tuple):
        return found_pair
    admin, key = found_pair
    wanted = KeyForm.parse(await form_lists(request))
    position, error = await _send_all(request, edit_commands(key, wanted, admin.user))
    if error is not None:
        fresh = await reader_of(request).key(key_id, position) or key
        return await key_page_of(
            request, admin, fresh, form=wanted, errors=field_errors(error), status_code=422
        )
    return found(key_url(organization_id, key_id, position))


async def _one(
    request: Request[Any, Any, Any], organization_id: str, key_id: str, kind: type[c.KeyCommand]
) -> Template | Redirect:
    found_pair = await admin_and_key(request, organization_id, key_id)
    if not isinstance(found_pair, tuple):
        return found_pair
    admin, key = found_pair
    command = kind(
        command_id=new_command_id(),
        organization_id=organization_id,
        actor_id=admin.user,
        key_id=key_id,
    )
    position, error = await _send_all(request, [command])
    if error is not None:
        return await key_page_of(request, admin, key, errors=field_errors(error), status_code=422)
    if kind is c.DeleteApiKey:
        return found(f"{key_url(organization_id, key_id).rsplit('/', 1)[0]}?after={position}")
    return found(key_url(organization_id, key_id, position))


@post("/orgs/{organization_id:str}/keys/{key_id:str}/disable")
async def disable_key(
    request: Request[Any, Any, Any], organization_id: str, key_id: str
) -> Template | Redirect:
    return await _one(request, organization_id, key_id, c.DisableApiKey)


@post("/orgs/{organization_id:str}/keys/{key_id:str}/enable")
async def enable_key(
    request: Request[Any, Any, Any], organization_id: str, key_id: str
) -> Template | Redirect:
    return await _one(request, organization_id, key_id, c.EnableApiKey)


@get("/orgs/{organization_id:str}/keys/{key_id:str}/delete")
async def confirm_delete(
    request: Request[Any, Any, Any], organization_id: str, key_id: str
) -> Template:
    found_pair = await admin_and_key(request, organization_id, key_id)
    if not isinstance(found_pair, tuple):
        return found_pair
    admin, key = found_pair
    return Template(
        template_name="delete.html", context={"admin": admin, "org": admin.org, "key": key}
    )


@post("/orgs/{organization_id:str}/keys/{key_id:str}/delete")
async def delete_key(
    request: Request[Any, Any, Any], organization_id: str, key_id: str
) -> Template | Redirect:
    return await _one(request, organization_id, key_id, c.DeleteApiKey)


@post("/orgs/{organization_id:str}/keys/{key_id:str}/rotate")
async def rotate_key(
    request: Request[Any, Any, Any], organization_id: str, key_id: str
) -> Template:
    found_pair = await admin_and_key(request, organization_id, key_id)
    if not isinstance(found_pair, tuple):
        return found_pair
    admin, key = found_pair
    form = await form_lists(request)
    text = (form.get("grace_seconds") or [""])[0]
    grace = int(text) if text.isdigit() and len(text) < 10 else -1
    if grace not in GRACE_CHOICES:
        return await key_page_of(
            request, admin, key, errors={"rotate": "Choose a grace period."}, status_code=422
        )
    rotated = await attempt(
        client_of(request).rotate_secret(
            organization_id, admin.user, key_id, grace, command_id=new_command_id()
        )
    )
    error = rotated if isinstance(rotated, str) else refusal(rotated.result)
    if error is not None or isinstance(rotated, str):
        errors = field_errors(error or "rejected")
        return await key_page_of(request, admin, key, errors=errors, status_code=422)
    position = rotated.result.position
    fresh = await reader_of(request).key(key_id, position)
    return Template(
        template_name="token.html",
        context={
            "admin": admin,
            "org": admin.org,
            "key": fresh,
            "key_id": key_id,
            "token": rotated.token,
            "created": False,
            "grace": GRACE_CHOICES[grace],
            "paths": admin.location_paths(),
            "position": position,
        },
        headers=NO_STORE,
    )


HANDLERS = [key_page, edit_key, disable_key, enable_key, confirm_delete, delete_key, rotate_key]
