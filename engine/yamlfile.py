"""One reader for every YAML file govern loads (govern.yaml, product.yaml, directory.yaml,
approvals.yaml): whatever is wrong with a file is one :class:`BadFile` with where and why,
never a traceback. Unreadable, not UTF-8, a syntax error, nested too deeply, or too large."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 16 * 1024 * 1024  # a product.yaml is kilobytes; a directory export megabytes
MAX_DEPTH = 100  # mappings and sequences inside each other; real files nest under 10


class BadFile(Exception):
    """``where`` (``line L, column C`` or "") and a one-line ``message``."""

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class _DepthLimitedLoader(yaml.SafeLoader):
    """The safe loader, refusing documents nested deeper than :data:`MAX_DEPTH` (PyYAML's
    composer recurses once per level and would end in a RecursionError)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise BadFile(_where(mark), f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load(path: Path) -> Any:
    """The YAML document in ``path`` (None when empty), or BadFile."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadFile("", f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_BYTES:
        raise BadFile("", f"{len(data)} bytes; at most {MAX_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise BadFile(f"line {line}", f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset "
                      f"{exc.start})") from None
    try:
        return yaml.load(text, Loader=_DepthLimitedLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadFile(_where(mark) if mark else "", f"invalid YAML: {problem}") from None
    except RecursionError:  # belt and braces: a construct the depth limit did not see
        raise BadFile("", "invalid YAML: nested too deeply") from None


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"
