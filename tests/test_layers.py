"""Layers in one direction: the engine (core values, protocols, the pipeline) imports no
adapter, server or command; adapters import the engine. Read from the source, so a new
import that runs the wrong way fails here."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

ADAPTERS = ("govern.connectors", "govern.identity", "govern.service", "govern.cli")
#: the registries the pipeline still picks targets and directory sources from (issue 22:
#: they move behind the engine's protocols next); nothing else may cross
ALLOWED = {("engine/pipeline.py", "govern.connectors.base"), ("engine/pipeline.py",
                                                             "govern.identity")}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_the_engine_imports_no_adapter_server_or_command():
    crossing = sorted((str(path.relative_to(ROOT)), module)
                      for path in (ROOT / "engine").rglob("*.py")
                      for module in imports(path) if module.startswith(ADAPTERS))
    assert [c for c in crossing if c not in ALLOWED] == []


def test_adapters_import_no_server_or_command():
    for package in ("connectors", "identity"):
        crossing = sorted((str(path.relative_to(ROOT)), module)
                          for path in (ROOT / package).rglob("*.py")
                          for module in imports(path)
                          if module.startswith(("govern.service", "govern.cli")))
        assert crossing == [], package
