"""Queries to the projection service over HTTP (one pooled httpx client, kept-alive
connections), answers decoded into the contracts' structs.

4xx answers raise ``QueryRejected`` (``Unauthorized`` for 401, ``Forbidden`` for 403); a 503 or
an unreachable service raises ``ProjectionUnavailable``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from client.errors import Forbidden, ProjectionUnavailable, QueryRejected, Unauthorized
from client.settings import ClientSettings
from contracts.audit import ExplainedCheckAnswer, KeyHistoryAnswer
from contracts.codec import json_encoder
from contracts.queries import (
    ErrorAnswer,
    KeyPermissionsAnswer,
    OrganizationKeysAnswer,
    VerifyAnswer,
    VerifyRequest,
)

T = TypeVar("T")
_error_decoder = msgspec.json.Decoder(ErrorAnswer)


def _params(**values: Any) -> dict[str, str]:
    """Query parameters, leaving out the ones not given."""
    params = {}
    for name, value in values.items():
        if value is None or value is False:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        params[name] = "true" if value is True else str(value)
    return params


def new_http_client(settings: ClientSettings) -> httpx.AsyncClient:
    """One pool of kept-alive connections to the projection service."""
    headers = {}
    if settings.caller_token:
        headers["Authorization"] = f"Bearer {settings.caller_token}"
    return httpx.AsyncClient(
        base_url=settings.projection_url,
        timeout=settings.query_timeout,
        headers=headers,
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        ),
    )


class QueryMethods:
    """The queries; a class using it provides ``http`` (an ``httpx.AsyncClient``)."""

    @property
    def http(self) -> httpx.AsyncClient:
        raise NotImplementedError

    async def check(
        self,
        key_id: str,
        permission: str,
        location_id: str,
        *,
        item_owner_is_key: bool = False,
        min_position: int | None = None,
        as_of: datetime | None = None,
        explain: bool = False,
    ) -> ExplainedCheckAnswer:
        """May the key use ``permission`` at ``location_id`` (now, or ``as_of``)?"""
        params = _params(
            key_id=key_id,
            permission=permission,
            location_id=location_id,
            item_owner="key" if item_owner_is_key else None,
            min_position=min_position,
            as_of=as_of,
            explain=explain,
        )
        return await self._get("/v1/check", params, ExplainedCheckAnswer)

    async def verify(
        self,
        token: str,
        permission: str | None = None,
        location_id: str | None = None,
        *,
        min_position: int | None = None,
    ) -> VerifyAnswer:
        """Which key a token belongs to, and (with both given) whether it holds a permission
        at a location."""
        body = json_encoder.encode(
            VerifyRequest(token=token, permission=permission, location_id=location_id)
        )
        return await self._call(
            "POST", "/v1/verify", _params(min_position=min_position), VerifyAnswer, body
        )

    async def permissions(
        self, key_id: str, *, min_position: int | None = None, as_of: datetime | None = None
    ) -> KeyPermissionsAnswer:
        params = _params(min_position=min_position, as_of=as_of)
        return await self._get(
            f"/v1/keys/{_path(key_id)}/permissions", params, KeyPermissionsAnswer
        )

    async def keys_with_permission(
        self,
        organization_id: str,
        permission: str,
        location_id: str,
        *,
        min_position: int | None = None,
    ) -> OrganizationKeysAnswer:
        params = _params(permission=permission, location_id=location_id, min_position=min_position)
        path = f"/v1/organizations/{_path(organization_id)}/keys"
        return await self._get(path, params, OrganizationKeysAnswer)

    async def history(
        self,
        key_id: str,
        *,
        after_position: int = 0,
        limit: int = 100,
        min_position: int | None = None,
        as_of: datetime | None = None,
    ) -> KeyHistoryAnswer:
        """One page of the key's events (with ``as_of``: those that occurred at or before
        it); the next page starts after ``next_after_position``."""
        params = _params(
            after_position=after_position, limit=limit, min_position=min_position, as_of=as_of
        )
        return await self._get(f"/v1/keys/{_path(key_id)}/history", params, KeyHistoryAnswer)

    async def _get(self, path: str, params: dict[str, str], answer: type[T]) -> T:
        return await self._call("GET", path, params, answer)

    async def _call(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        answer: type[T],
        body: bytes | None = None,
    ) -> T:
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            response = await self.http.request(
                method, path, params=params, content=body, headers=headers
            )
        except httpx.TransportError as error:
            raise ProjectionUnavailable(f"projection service unreachable: {error!r}") from None
        if response.status_code == 200:
            return msgspec.json.decode(response.content, type=answer)
        raise _failure(response)


def _path(value: str) -> str:
    return quote(value, safe="")


def _failure(response: httpx.Response) -> Exception:
    try:
        error = _error_decoder.decode(response.content)
    except msgspec.DecodeError:
        error = ErrorAnswer(error=f"HTTP {response.status_code}", detail=response.text[:200])
    status = response.status_code
    if status == 401:
        return Unauthorized(status, error.error, error.detail)
    if status == 403:
        return Forbidden(status, error.error, error.detail)
    if status >= 500:
        reason = error.error + (f": {error.detail}" if error.detail else "")
        return ProjectionUnavailable(f"{status} {reason}", error.position)
    return QueryRejected(status, error.error, error.detail)


class Queries(QueryMethods):
    """The queries alone (no Redis): for a gateway or a read-only service."""

    def __init__(self, settings: ClientSettings) -> None:
        self._http = new_http_client(settings)

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    async def close(self) -> None:
        await self._http.aclose()
