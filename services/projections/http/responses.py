"""The OpenAPI description of the query API's answers: every 4xx and 5xx is the one error
body (``contracts.queries.ErrorAnswer``), documented per status."""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec

from contracts import queries as q


def error_spec(description: str) -> ResponseSpec:
    return ResponseSpec(q.ErrorAnswer, description=description, generate_examples=False)


# every 4xx and 5xx a query may answer, each with the one error body
ERRORS: dict[int, ResponseSpec] = {
    400: error_spec("malformed or unknown parameters"),
    405: error_spec("method not allowed (the Allow header lists the allowed ones)"),
    500: error_spec("unexpected failure"),
    501: error_spec("this service has no event log store (as_of, explain, history)"),
    503: error_spec(
        "the read model is loading, the min_position was not applied within "
        "APIKEYS_MIN_POSITION_WAIT seconds (position: where it is), or, with "
        "APIKEYS_REFUSE_WHEN_STALE, it is stale"
    ),
}


CALLER_ERRORS = {
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
SECURED: dict[str, Any] = {
    "responses": {**ERRORS, **CALLER_ERRORS},
    "security": [{"callerToken": []}],
}
