"""The eventsourcing PostgreSQL factory, with connections that notice a silent peer.

Selected through eventsourcing's ``PERSISTENCE_MODULE`` (see ``store.application``); the
library has no setting for libpq's keepalives, so they are added to its pool's connection
arguments before the pool opens.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresFactory

from services.common.postgres import LIVENESS, RECONNECT_SECONDS


class LivelyPostgresFactory(PostgresFactory):
    def __init__(self, env: Any) -> None:
        super().__init__(env)
        kwargs = self.datastore.pool.kwargs
        if not isinstance(kwargs, dict):
            raise TypeError("eventsourcing's pool no longer takes a dict of connection arguments")
        kwargs.update(LIVENESS)
        self.datastore.pool.reconnect_timeout = RECONNECT_SECONDS
