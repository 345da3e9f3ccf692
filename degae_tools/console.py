"""What commands show a person: tables, summaries, progress bars (quiet under --quiet/--json)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

T = TypeVar("T")


@dataclass
class OutputMode:
    """How the current command reports: `quiet` hides progress and chatter, `json` prints JSON."""

    quiet: bool = False
    json: bool = False


mode = OutputMode()
stderr = Console(stderr=True)
stdout = Console()


def say(message: str) -> None:
    """A line of chatter on stderr, unless quiet or JSON output was asked for."""
    if not (mode.quiet or mode.json):
        stderr.print(message)


def progress(items: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Iterate with a progress bar on stderr (none under --quiet/--json or when not a terminal)."""
    if mode.quiet or mode.json or not sys.stderr.isatty():
        yield from items
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def show_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """Print rows as a table, or as a JSON list of objects under --json."""
    if mode.json:
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str))
        return
    table = Table(title=title or None)
    for c in columns:
        table.add_column(str(c))
    for r in rows:
        table.add_row(*("" if v is None else _fmt(v) for v in r))
    stdout.print(table)


def show_record(record: dict[str, Any], title: str = "") -> None:
    """Print one summary record as a two-column table, or JSON."""
    if mode.json:
        print(json.dumps(record, default=str))
        return
    show_table(["field", "value"], list(record.items()), title=title)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
