"""The Python client of the API keys product: publish commands and await their results,
subscribe to events, query the projection service, and protect an ASGI app (gateway middleware).

Needs only redis, msgspec and httpx beyond the standard library; imports ``contracts`` and no
service.
"""

from client.api import ApiKeysClient
from client.commands import NewSecret
from client.errors import (
    ClientError,
    CommandRejected,
    CommandTimeout,
    EventsMissing,
    Forbidden,
    InvalidCommand,
    PartitionMismatch,
    ProjectionUnavailable,
    QueryRejected,
    Unauthorized,
)
from client.settings import ClientSettings
from client.sync import SyncClient

__all__ = [
    "ApiKeysClient",
    "ClientError",
    "ClientSettings",
    "CommandRejected",
    "CommandTimeout",
    "EventsMissing",
    "Forbidden",
    "InvalidCommand",
    "NewSecret",
    "PartitionMismatch",
    "ProjectionUnavailable",
    "QueryRejected",
    "SyncClient",
    "Unauthorized",
]
