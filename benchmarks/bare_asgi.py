"""The same-run HTTP baseline: a bare ASGI app answering a dict lookup with a JSON body, served
by the projection service's own server stack (its uvicorn settings and event loop).

    .venv/bin/python -m benchmarks.bare_asgi PORT KEYS
"""

from __future__ import annotations

import os
import sys
from typing import Any

from services.common.http_limits import HttpLimits
from services.projections import main as projections

HEADERS = [(b"content-type", b"application/json")]


def make_app(keys: int) -> Any:
    answers = {
        f"k{k}".encode(): b'{"allowed":true,"reasons":[],"position":%d}' % k for k in range(keys)
    }
    missing = b'{"allowed":false,"reasons":[],"position":0,"denied_because":"unknown_key"}'

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # the key is the first query parameter: key_id=...&...
        key = scope["query_string"].split(b"&", 1)[0][7:]
        body = answers.get(key, missing)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    port, keys = int(sys.argv[1]), int(sys.argv[2])
    listener = projections.listen("127.0.0.1", port)
    print(f"bare ASGI listening on http://127.0.0.1:{port}", flush=True)
    server = projections.HttpServer(
        projections.server_config(make_app(keys), HttpLimits.from_env(os.environ))
    )
    projections.run_async(server.serve(sockets=[listener]))


if __name__ == "__main__":
    main()
