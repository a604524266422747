"""Store URLs, parsed once for both services: `sqlite:///relative/path.db`,
`sqlite:////absolute/path.db`, `sqlite:///:memory:` or
`postgresql://user:password@host:port/dbname?schema=name`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class SqliteUrl:
    path: str  # a file path, or ":memory:"


@dataclass(frozen=True)
class PostgresUrl:
    conninfo: str  # the URL without the schema parameter, as libpq takes it
    schema: str | None
    host: str
    port: int
    dbname: str
    user: str
    password: str


StoreUrl = SqliteUrl | PostgresUrl


def parse_store_url(url: str) -> StoreUrl:
    parts = urlsplit(url)
    if parts.scheme == "sqlite" and url.startswith("sqlite:///"):
        # sqlite:///var/x.db is relative, sqlite:////abs/x.db is absolute
        return SqliteUrl(unquote(url.removeprefix("sqlite:///")) or ":memory:")
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        schema = query.pop("schema", [None])[0]
        if schema is not None and not SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema must be a lowercase identifier, got {schema!r}")
        rest = urlencode({k: v[0] for k, v in query.items()})
        return PostgresUrl(
            conninfo=urlunsplit(parts._replace(query=rest)),
            schema=schema,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            dbname=parts.path.lstrip("/") or "postgres",
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
        )
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path or postgresql://...")
