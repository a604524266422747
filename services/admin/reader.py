"""How the admin service reads: the projection service's HTTP API, with the admin's caller
token when one is configured (anonymously otherwise). Answers are decoded into the contracts'
structs."""

from __future__ import annotations

import urllib.parse
from typing import Any, TypeVar

import httpx
import msgspec

from contracts import audit as a
from contracts import directory as d

T = TypeVar("T")
TIMEOUT_SECONDS = 10.0


class ReadFailed(Exception):
    """The projection service did not answer as expected (down, behind, or an error)."""

    def __init__(self, status: int | None, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class ProjectionReader:
    def __init__(self, base_url: str, caller_token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {caller_token}"} if caller_token else {}
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=TIMEOUT_SECONDS)

    async def close(self) -> None:
        await self.http.aclose()

    async def _get(self, path: str, into: type[T], params: dict[str, Any]) -> T:
        query = {k: v for k, v in params.items() if v is not None}
        try:
            response = await self.http.get(path, params=query)
        except httpx.HTTPError as error:
            raise ReadFailed(None, f"the projection service cannot be reached ({error})") from None
        if response.status_code != 200:
            try:
                error_text = str(response.json().get("error", response.text))
            except ValueError:
                error_text = response.text[:200]
            raise ReadFailed(response.status_code, error_text)
        return msgspec.json.decode(response.content, type=into)

    async def organization(
        self, organization_id: str, min_position: int | None = None
    ) -> d.OrganizationAnswer:
        path = f"/v1/organizations/{quote(organization_id)}"
        return await self._get(path, d.OrganizationAnswer, {"min_position": min_position})

    async def keys(
        self, organization_id: str, min_position: int | None = None
    ) -> d.OrganizationKeyListAnswer:
        path = f"/v1/organizations/{quote(organization_id)}/api-keys"
        return await self._get(path, d.OrganizationKeyListAnswer, {"min_position": min_position})

    async def key(self, key_id: str, min_position: int | None = None) -> d.KeyDetails | None:
        try:
            answer = await self._get(
                f"/v1/keys/{quote(key_id)}", d.KeyDetailsAnswer, {"min_position": min_position}
            )
        except ReadFailed as failed:
            if failed.status == 404:
                return None
            raise
        return answer.key

    async def history(self, key_id: str, limit: int = 200) -> a.KeyHistoryAnswer:
        path = f"/v1/keys/{quote(key_id)}/history"
        return await self._get(path, a.KeyHistoryAnswer, {"limit": limit})

    async def explain(
        self, key_id: str, permission: str, location_id: str
    ) -> a.ExplainedCheckAnswer:
        params = {
            "key_id": key_id,
            "permission": permission,
            "location_id": location_id,
            "explain": "true",
        }
        return await self._get("/v1/check", a.ExplainedCheckAnswer, params)


def quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")
