"""The read model: the stored truth (organizations, keys, the secret index) and the caches
derived from it, which are never stored and are rebuilt from the truth when dropped."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.projections.model.grants import AnswerTable, Children, KeyGrants, OrgIndex
from services.projections.model.values import KeyView, OrganizationView, SecretRef

# the bound on the compiled grants kept at once (the cache is emptied when it is reached)
GRANT_CACHE_LIMIT = 50_000
# the bound on the shared answers: reason sets that no key holds any more are never removed one
# by one, so on reaching it every derived cache is dropped and rebuilt on demand
ANSWER_TABLE_LIMIT = 100_000


@dataclass
class ReadModel:
    position: int = 0
    organizations: dict[str, OrganizationView] = field(default_factory=dict)
    keys: dict[str, KeyView] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    org_keys: dict[str, set[str]] = field(default_factory=dict)
    # derived, never stored: compiled grants per key, an index (tree, grant blocks) per org,
    # the shared answers (one object per distinct set of reasons, whatever key holds it)
    grant_cache: dict[str, KeyGrants] = field(default_factory=dict)
    org_indexes: dict[str, OrgIndex] = field(default_factory=dict)
    # each organization's location tree (parent -> children), kept up to date event by event
    trees: dict[str, Children] = field(default_factory=dict)
    answers: AnswerTable = field(default_factory=dict)
    answer_limit: int = ANSWER_TABLE_LIMIT
    # when a list: what the fold drops (compiled grants, grant blocks) is put here instead of
    # being freed at once, for the live service to free a slice at a time (``gc_policy``)
    released: list[object] | None = None

    def release(self, dropped: object) -> None:
        if self.released is not None and dropped is not None:
            self.released.append(dropped)

    def drop_derived(self) -> None:
        """Forget the compiled grants, the org indexes and the answers together: an index
        remembers answers by identity, so none of them may outlive the table."""
        self.grant_cache.clear()
        self.org_indexes.clear()
        self.answers = {}
