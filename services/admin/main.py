"""`apikeys serve-admin`: the admin page on APIKEYS_ADMIN_ADDR until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from services.admin.app import create_app
from services.admin.reader import ProjectionReader
from services.admin.sender import new_client
from services.admin.settings import AdminSettings
from services.common.http_server import HttpServer, http_config


async def serve_async(settings: AdminSettings) -> None:
    reader = ProjectionReader(settings.projections_url, settings.caller_token)
    app = create_app(settings, new_client(settings), reader)
    config = http_config(
        app, settings.http_limits, host=settings.host, port=settings.port, proxy_headers=False
    )
    config.lifespan = "on"
    server = HttpServer(config)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    print(f"admin listening on http://{settings.addr}", flush=True)
    if settings.dev_user is not None:
        print(f"admin signs every request in as {settings.dev_user!r} (APIKEYS_ADMIN_DEV_USER)")
    await server.serve()


def serve(settings: AdminSettings | None = None) -> None:
    asyncio.run(serve_async(settings or AdminSettings.from_env()))
