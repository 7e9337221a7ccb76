"""Load and validate a mesh: ``govern.yaml`` plus every product folder it names.

Every problem in every file is collected and reported together (:class:`SpecError`); nothing
downstream runs on a mesh that has any problem.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from . import yamlfile
from .errors import Problem, SpecError
from .spec import MeshConfig, ProductSpec

CONFIG_FILE = "govern.yaml"
PRODUCT_FILE = "product.yaml"
POLICY_FILE = "policy.rego"
POLICY_TEST_FILE = "policy_test.rego"
_PACKAGE_RE = re.compile(r"^\s*package\s+([A-Za-z0-9_.]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Product:
    spec: ProductSpec
    folder: Path
    policy: Path
    test: Path | None

    @property
    def ref(self) -> str:
        return self.spec.ref

    @property
    def package(self) -> str:
        return f"products.{self.spec.domain}.{self.spec.name}"


@dataclass(frozen=True)
class Mesh:
    root: Path
    config: MeshConfig
    products: tuple[Product, ...]

    def product(self, ref: str) -> Product:
        for product in self.products:
            if product.ref == ref:
                return product
        raise KeyError(ref)

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.root / path

    def extra_policies(self) -> list[Path]:
        """The mesh's own platform Rego (``policies:`` globs in govern.yaml), tests excluded."""
        found = {p.resolve() for pattern in self.config.policies for p in self.root.glob(pattern)
                 if p.suffix == ".rego" and not p.name.endswith("_test.rego")}
        return sorted(found)

    def fingerprint(self) -> str:
        """sha256 over every file that shapes the desired state (config, specs, policies)."""
        digest = hashlib.sha256()
        files = [self.root / CONFIG_FILE]
        for product in self.products:
            files += [product.folder / PRODUCT_FILE, product.policy]
        files += self.extra_policies()
        for path in sorted(files):
            digest.update(str(path.relative_to(self.root) if path.is_relative_to(self.root)
                              else path).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
        return digest.hexdigest()


def find_root(start: Path) -> Path:
    """The folder holding govern.yaml: ``start`` itself or its nearest parent."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise SpecError([Problem(str(start), "", f"no {CONFIG_FILE} here or in any parent folder")])


def load_config(root: Path) -> MeshConfig:
    """Only govern.yaml (for commands that do not need the products)."""
    problems: list[Problem] = []
    config = _load_model(root / CONFIG_FILE, MeshConfig, problems, root)
    if config is None:
        raise SpecError(problems)
    return config


def load_mesh(root: Path) -> Mesh:
    """Load and validate the whole mesh under ``root``; raise SpecError listing every problem."""
    root = root.resolve()
    problems: list[Problem] = []
    config = _load_model(root / CONFIG_FILE, MeshConfig, problems, root)
    if config is None:
        raise SpecError(problems)

    products: list[Product] = []
    seen: dict[str, Path] = {}
    for folder in _product_folders(root, config, problems):
        rel = relative(folder / PRODUCT_FILE, root)
        spec = _load_model(folder / PRODUCT_FILE, ProductSpec, problems, root)
        if spec is None:
            continue
        if spec.ref in seen:
            problems.append(Problem(rel, "name", f"product {spec.ref} is also defined in "
                                    f"{relative(seen[spec.ref], root)}"))
            continue
        seen[spec.ref] = folder / PRODUCT_FILE
        for i, port in enumerate(spec.ports):
            if port.target not in config.targets:
                known = ", ".join(sorted(config.targets))
                problems.append(Problem(rel, f"ports[{i}].target", f"unknown target "
                                        f"{port.target!r} (govern.yaml has: {known})"))
        policy = folder / POLICY_FILE
        test = folder / POLICY_TEST_FILE
        _check_policy_package(policy, f"products.{spec.domain}.{spec.name}", problems, root)
        products.append(Product(spec, folder, policy, test if test.is_file() else None))

    if problems:
        raise SpecError(problems)
    products.sort(key=lambda p: p.ref)
    return Mesh(root, config, tuple(products))


def _product_folders(root: Path, config: MeshConfig, problems: list[Problem]) -> list[Path]:
    folders: set[Path] = set()
    for i, pattern in enumerate(config.products):
        matches = [p.parent for p in root.glob(f"{pattern.rstrip('/')}/{PRODUCT_FILE}")]
        if not matches:
            problems.append(Problem(CONFIG_FILE, f"products[{i}]",
                                    f"glob {pattern!r} matches no folder with a {PRODUCT_FILE}"))
        folders.update(m.resolve() for m in matches)
    return sorted(folders)


def _check_policy_package(policy: Path, package: str, problems: list[Problem], root: Path) -> None:
    rel = relative(policy, root)
    if not policy.is_file():
        problems.append(Problem(rel, "", f"missing {POLICY_FILE} (package {package})"))
        return
    found = _PACKAGE_RE.search(policy.read_text(encoding="utf-8", errors="replace"))
    if found is None or found.group(1) != package:
        got = found.group(1) if found else "none"
        problems.append(Problem(rel, "package", f"must be `package {package}`, found {got}"))


def read_yaml(path: Path, problems: list[Problem], root: Path) -> Any:
    """Parse one YAML file; anything wrong with it becomes one Problem with its line."""
    try:
        return yamlfile.load(path)
    except yamlfile.BadFile as exc:
        problems.append(Problem(relative(path, root), exc.where, exc.message))
        return None


def _load_model(path: Path, model: type[BaseModel], problems: list[Problem], root: Path) -> Any:
    before = len(problems)
    data = read_yaml(path, problems, root)
    if data is None and len(problems) == before:
        data = {}
    if not isinstance(data, dict):
        if data is not None:
            problems.append(Problem(relative(path, root), "", "must be a YAML mapping"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems.extend(validation_problems(relative(path, root), exc))
        return None


def validation_problems(file: str, exc: ValidationError) -> list[Problem]:
    """pydantic errors → Problems with a field path like ``ports[0].datasets[1].name``."""
    out = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(Problem(file, path, message))
    return out


def relative(path: Path, root: Path) -> str:
    """``path`` as messages show it: relative to the mesh root when inside it."""
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
