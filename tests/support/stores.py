"""The stores a store fixture runs each test on: SQLite always, PostgreSQL marked `postgres`."""

from __future__ import annotations

import pytest

STORES = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))
