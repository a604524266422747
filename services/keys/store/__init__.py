"""The keys' event store: the eventsourcing application, its batch recorders, the transcoder
and the PostgreSQL factory, all chosen from one store URL."""

from services.keys.store.application import ApiKeysApplication, persistence_env

__all__ = ["ApiKeysApplication", "persistence_env"]
