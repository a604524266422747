"""The view store's schema: every table defined once, in the one list that creating, rebuilding,
dropping and dumping the store all read.

A table is stored as ``<prefix><name>``; these names are what existing databases hold, so they
never change. In the statements, ``{p}`` stands for the prefix and ``?`` for a parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "apikeys_view_"
PREFIX_PATTERN = re.compile(r"^apikeys_view_[a-z0-9_]*$")


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]  # in row order; the first one identifies a row
    definition: str  # the column definitions of CREATE TABLE
    indexes: tuple[tuple[str, str], ...] = ()  # (name suffix, indexed columns)
    upsert: bool = True  # a row replaces the one with its id (False: rows are only appended)

    def create(self, suffix: str = "") -> str:
        return f"CREATE TABLE IF NOT EXISTS {{p}}{self.name}{suffix} ({self.definition})"

    def create_fresh(self, suffix: str) -> str:
        """CREATE TABLE for a new copy named ``<name><suffix>`` (a rebuild fills it, then
        renames it)."""
        return f"CREATE TABLE {{p}}{self.name}{suffix} ({self.definition})"

    def create_indexes(self) -> list[str]:
        return [
            f"CREATE INDEX IF NOT EXISTS {{p}}{self.name}_{index} ON {{p}}{self.name} ({columns})"
            for index, columns in self.indexes
        ]

    def insert(self, suffix: str = "") -> str:
        """The statement writing one row into ``<name><suffix>``."""
        values = ", ".join("?" for _ in self.columns)
        text = f"INSERT INTO {{p}}{self.name}{suffix} ({', '.join(self.columns)}) VALUES ({values})"
        if self.upsert:
            row_id, *rest = self.columns
            updates = ", ".join(f"{column} = excluded.{column}" for column in rest)
            text += f" ON CONFLICT ({row_id}) DO UPDATE SET {updates}"
        return text

    def select_all(self) -> str:
        return f"SELECT {', '.join(self.columns)} FROM {{p}}{self.name}"


ORGANIZATIONS = Table(
    "organizations",
    ("organization_id", "state"),
    "organization_id TEXT PRIMARY KEY, state TEXT NOT NULL",
)
KEYS = Table(
    "keys",
    ("key_id", "organization_id", "state"),
    "key_id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, state TEXT NOT NULL",
    indexes=(("org", "organization_id"),),
)
SECRETS = Table(
    "secrets",
    ("sha256", "key_id", "kind", "valid_until"),
    "sha256 TEXT PRIMARY KEY, key_id TEXT NOT NULL, kind TEXT NOT NULL, valid_until TEXT",
    indexes=(("key", "key_id"),),
)
# every applied contract event as it came on the stream, read by the audit queries
EVENT_LOG = Table(
    "event_log",
    ("position", "organization_id", "key_id", "type", "occurred_at", "event"),
    "position BIGINT PRIMARY KEY, organization_id TEXT NOT NULL, key_id TEXT,"
    " type TEXT NOT NULL, occurred_at TEXT NOT NULL, event TEXT NOT NULL",
    indexes=(("key", "key_id, position"), ("org", "organization_id, position")),
    upsert=False,
)
# one row: the stream position the other tables reflect
POSITION = Table("position", ("id", "position"), "id INTEGER PRIMARY KEY, position BIGINT NOT NULL")

# the model's rows and its event log: a rebuild replaces these whole, a dump reads them
ROW_TABLES = (ORGANIZATIONS, KEYS, SECRETS, EVENT_LOG)
TABLES = (*ROW_TABLES, POSITION)

READ_POSITION = "SELECT position FROM {p}position WHERE id = 1"
ADVANCE_POSITION = "UPDATE {p}position SET position = ? WHERE id = 1 AND position < ?"
SET_POSITION = "UPDATE {p}position SET position = ? WHERE id = 1"
_FIRST_POSITION = "INSERT INTO {p}position (id, position) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"


def create_statements() -> list[str]:
    """Every table and index, then the position row (each statement does nothing if done)."""
    statements = []
    for table in TABLES:
        statements += [table.create(), *table.create_indexes()]
    return [*statements, _FIRST_POSITION]
