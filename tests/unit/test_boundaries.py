"""Boundaries import-linter cannot state: it forbids whole external packages only, so the
rule that the keys domain uses eventsourcing.domain alone (never its application or
persistence) is pinned here by reading the domain's imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import services.keys.domain as domain

ALLOWED_EVENTSOURCING = {"eventsourcing.domain"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_keys_domain_imports_only_the_standard_library_and_eventsourcing_domain() -> None:
    folder = Path(domain.__file__).parent
    outside = {
        f"{path.name}: {name}"
        for path in folder.glob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and name not in ALLOWED_EVENTSOURCING
        and not name.startswith("services.keys.domain")
    }
    assert not outside


def test_the_import_reader_sees_third_party_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import redis\nfrom eventsourcing.application import Application\n")
    assert imported_modules(module) == {"redis", "eventsourcing.application"}
