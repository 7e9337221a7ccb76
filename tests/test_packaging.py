"""The package ships every policy folder and the server's pages: a folder missing from
pyproject.toml would install a govern without its guardrails (and setuptools warns)."""

from __future__ import annotations

import tomllib

from .conftest import ROOT


def test_every_policy_and_page_folder_is_a_declared_package_with_its_files():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, data = set(config["packages"]), config["package-data"]
    folders = {f"govern.policies.{d.name}": "*.rego" for d in (ROOT / "policies").iterdir()
               if d.is_dir() and any(d.glob("*.rego"))}
    folders |= {"govern.service.templates": "*.html", "govern.service.static": "*"}
    for package, pattern in folders.items():
        assert package in packages, package
        assert pattern in data.get(package, []), package
