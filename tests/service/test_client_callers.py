"""The client's queries as a caller of a projection API that has a callers file (real HTTP):
the caller token goes with every query; 401 and 403 come back as typed errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from client import ClientSettings, Forbidden, Unauthorized
from client.queries import Queries
from tests.support.callers import TOKEN_A, TOKENS, serve_api


async def test_a_caller_token_goes_with_every_query(tmp_path: Path) -> None:
    async with serve_api(tmp_path) as api:
        queries = Queries(ClientSettings(projection_url=api.url, caller_token=TOKENS["gateway"]))
        try:
            answer = await queries.verify(TOKEN_A)
            assert answer.valid and answer.key_id == "ka"
            check = await queries.check("ka", "view", "hq")
            assert check.allowed
        finally:
            await queries.close()


async def test_without_or_beyond_its_scope_the_errors_are_typed(tmp_path: Path) -> None:
    async with serve_api(tmp_path) as api:
        anonymous = Queries(ClientSettings(projection_url=api.url))
        verifier = Queries(ClientSettings(projection_url=api.url, caller_token=TOKENS["verifier"]))
        try:
            with pytest.raises(Unauthorized) as missing:
                await anonymous.verify(TOKEN_A)
            assert missing.value.status == 401 and missing.value.error == "unauthenticated"
            with pytest.raises(Forbidden) as forbidden:
                await verifier.check("ka", "view", "hq")
            assert forbidden.value.status == 403
        finally:
            await anonymous.close()
            await verifier.close()
