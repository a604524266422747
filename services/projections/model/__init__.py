"""The read model and its rules, pure (no I/O, no clock): values, compiled grants, the model's
state, the fold of contract events into it, the queries over it, the answers built from them,
and how the model keeps clear of the cycle collector.

The names below are re-exported so that the whole pure API is one import away.
"""

from services.projections.model.decisions import Decision
from services.projections.model.fold import Touched, apply, fold, restore
from services.projections.model.grants import KeyGrants, aware
from services.projections.model.listing import effective_permissions
from services.projections.model.queries import (
    check,
    key_grants,
    key_status,
    keys_with_permission,
)
from services.projections.model.state import GRANT_CACHE_LIMIT, ReadModel
from services.projections.model.values import (
    KeyView,
    LocationNode,
    OrganizationView,
    RoleDefinition,
    SecretRef,
)

__all__ = [
    "GRANT_CACHE_LIMIT",
    "Decision",
    "KeyGrants",
    "KeyView",
    "LocationNode",
    "OrganizationView",
    "ReadModel",
    "RoleDefinition",
    "SecretRef",
    "Touched",
    "apply",
    "aware",
    "check",
    "effective_permissions",
    "fold",
    "key_grants",
    "key_status",
    "keys_with_permission",
    "restore",
]
