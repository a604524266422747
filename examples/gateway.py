"""Gateway: a small Litestar app whose routes need an API key, checked by the middleware.

    APIKEYS_PROJECTION_URL=http://127.0.0.1:8080 python examples/gateway.py --port 8090
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8090/plants/plant-7/report
    curl -u "api:$TOKEN" http://127.0.0.1:8090/whoami

``/plants/{location_id}/report`` needs ``view_private`` at that location (else 403); every
other route needs a valid key (else 401); 503 while the projection service cannot answer.
"""

import argparse

import uvicorn
from litestar import Litestar, Request, get

from client.middleware import ApiKeyMiddleware, path_rule


@get("/whoami")
async def whoami(request: Request) -> dict[str, str]:
    key = request.state.api_key
    return {"key_id": key.key_id, "organization_id": key.organization_id}


@get("/plants/{location_id:str}/report")
async def report(request: Request, location_id: str) -> dict[str, str]:
    return {"location_id": location_id, "report": "...", "key_id": request.state.api_key.key_id}


def create_app(cache_seconds: float = 2.0) -> Litestar:
    requirement = path_rule(r"^/plants/(?P<location_id>[^/]+)/report$", "view_private")
    return Litestar(
        route_handlers=[whoami, report],
        middleware=[
            lambda app: ApiKeyMiddleware(app, requirement=requirement, cache_seconds=cache_seconds)
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--cache-seconds", type=float, default=2.0)
    args = parser.parse_args()
    app = create_app(args.cache_seconds)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
