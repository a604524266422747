"""The keys' event store: the eventsourcing application, its batch recorders, the transcoder
and the PostgreSQL factory, all chosen from one store URL."""

from services.keys.store.application import ApiKeysApplication, persistence_env
from services.keys.store.fencing import Fence, Fenced

__all__ = ["ApiKeysApplication", "Fence", "Fenced", "persistence_env"]
