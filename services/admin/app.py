"""The admin service's Litestar app: server-rendered Jinja2 templates, assets served from the
package, forms protected against cross-site request forgery, a strict Content-Security-Policy
and the usual hardening headers on every answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import ResponseHeader, State
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from client import ApiKeysClient
from services.admin import key_pages, pages
from services.admin.reader import ProjectionReader, ReadFailed
from services.admin.settings import AdminSettings

HERE = Path(__file__).parent
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CONTENT_SECURITY_POLICY),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="no-referrer"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
    ResponseHeader(name="Cross-Origin-Opener-Policy", value="same-origin"),
]
MAX_BODY_BYTES = 256 * 1024  # a key's form with its 1,000 locations and grid fits


def _read_failed(_: Request[Any, Any, Any], exc: ReadFailed) -> Template:
    return Template(
        template_name="error.html",
        context={"title": "The keys cannot be read right now", "detail": exc.error},
        status_code=503,
    )


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Template:
    return Template(
        template_name="error.html",
        context={"title": str(exc.detail), "detail": ""},
        status_code=exc.status_code,
    )


def create_app(
    settings: AdminSettings, client: ApiKeysClient, reader: ProjectionReader
) -> Litestar:
    async def close() -> None:
        await client.close()
        await reader.close()

    return Litestar(
        route_handlers=[
            *pages.HANDLERS,
            *key_pages.HANDLERS,
            create_static_files_router(path="/static", directories=[HERE / "static"]),
        ],
        state=State({"settings": settings, "client": client, "reader": reader}),
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        csrf_config=CSRFConfig(
            secret=settings.csrf_secret,
            cookie_name="apikeys_csrf",
            cookie_httponly=True,
            cookie_samesite="strict",
        ),
        response_headers=SECURITY_HEADERS,
        exception_handlers={ReadFailed: _read_failed, HTTPException: _http_error},
        request_max_body_size=MAX_BODY_BYTES,
        on_shutdown=[close],
        openapi_config=None,
        logging_config=None,
        debug=False,
    )


def error_response(status: int, text: str) -> Response[str]:
    return Response(text, status_code=status, media_type="text/plain")
