"""Deterministic aggregate ids: the same business id always maps to the same aggregate."""

from functools import lru_cache
from uuid import UUID, uuid5

NAMESPACE = UUID("6f1c2a8e-3b7d-4d8e-9a51-2c4b7e0f9a13")
# the ids in use lately: a miss only recomputes a uuid5, so a small fixed bound will do
ID_CACHE_SIZE = 4096


@lru_cache(maxsize=ID_CACHE_SIZE)
def organization_uuid(organization_id: str) -> UUID:
    return uuid5(NAMESPACE, f"organization:{organization_id}")


@lru_cache(maxsize=ID_CACHE_SIZE)
def key_uuid(key_id: str) -> UUID:
    return uuid5(NAMESPACE, f"key:{key_id}")


def receipt_uuid(command_id: str) -> UUID:
    return uuid5(NAMESPACE, f"command:{command_id}")
