"""Who may use an organization's page: a signed-in person holding API Administrator while the
organization's API module is on. Anyone else gets a page that says why and offers no action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.response import Template

from contracts import directory as d
from services.admin.identity import signed_in_user
from services.admin.reader import ProjectionReader
from services.admin.settings import AdminSettings


@dataclass
class Admin:
    """The signed-in API Administrator and the organization's directory."""

    user: str
    org: d.OrganizationAnswer

    def location_paths(self) -> dict[str, str]:
        return {e.location_id: " / ".join(e.path) for e in self.org.locations}

    def role_names(self) -> dict[str, str]:
        return {r.role_id: r.name for r in self.org.roles}


def settings_of(request: Request[Any, Any, Any]) -> AdminSettings:
    settings: AdminSettings = request.app.state.settings
    return settings


def reader_of(request: Request[Any, Any, Any]) -> ProjectionReader:
    reader: ProjectionReader = request.app.state.reader
    return reader


def user_of(request: Request[Any, Any, Any]) -> str | None:
    settings = settings_of(request)
    client = request.client.host if request.client else None
    return signed_in_user(settings, client, request.headers.get(settings.user_header))


async def admin_or_refusal(
    request: Request[Any, Any, Any], organization_id: str, min_position: int | None = None
) -> Admin | Template:
    """The administrator, or the page telling this person why they may not act here."""
    user = user_of(request)
    if user is None:
        return refusal("not_signed_in", organization_id, None, 401)
    org = await reader_of(request).organization(organization_id, min_position)
    if not org.known or not org.api_module_enabled:
        return refusal("api_module_disabled", organization_id, user, 403)
    if user not in org.administrators:
        return refusal("not_api_administrator", organization_id, user, 403)
    return Admin(user, org)


def refusal(reason: str, organization_id: str, user: str | None, status: int) -> Template:
    return Template(
        template_name="refused.html",
        context={"reason": reason, "organization_id": organization_id, "user": user},
        status_code=status,
    )
