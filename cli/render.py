"""Output for people (rich, on a terminal) and for machines (JSON lines, in CI)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from govern.engine.errors import one_line
from govern.engine.pipeline import Reporter


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=False))


def error(message: str) -> None:
    """One line on stderr, whatever the message holds (control characters escaped, cut)."""
    click.echo(f"error: {one_line(message)}", err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {one_line(message)}", err=True)


class RichReporter(Reporter):
    """A progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: Any = None

    @classmethod
    def for_terminal(cls, fmt: str) -> Reporter:
        if fmt == "text" and sys.stderr.isatty():
            return cls()
        return Reporter()

    def phase(self, name: str, total: int | None = None) -> None:
        if self._progress is None:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=Console(stderr=True), transient=True)
            self._progress.start()
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total or 1)
        self._task = self._progress.add_task(name, total=total or 1)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
