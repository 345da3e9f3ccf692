"""Named SQL statements kept in `sql/queries/<owner>/<name>.sql`, one per file.

A module declares the statements it runs once, at the top, as constants:

    PENDING = Query("de/pending")

so `grep -r 'de/pending'` finds every user of a file, and a test checks that every file is used
and every name has a file. Parameters are named (`$name`) and passed as a dict.
"""

from __future__ import annotations

import re
from functools import cached_property
from importlib import resources

NAME = re.compile(r"^[a-z_]+/[a-z0-9_]+$")


class Query:
    """The text of `sql/queries/<owner>/<name>.sql`, read when first used."""

    def __init__(self, name: str) -> None:
        if not NAME.match(name):
            raise ValueError(f"query names are 'owner/name' in lower case, got {name!r}")
        self.name = name

    @cached_property
    def text(self) -> str:
        owner, _, stem = self.name.partition("/")
        return (resources.files("sql") / "queries" / owner / f"{stem}.sql").read_text()

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Query({self.name!r})"


def query_names() -> list[str]:
    """Every `owner/name` under `sql/queries/` (for the test that finds unused files)."""
    root = resources.files("sql") / "queries"
    return sorted(
        f"{owner.name}/{f.name.removesuffix('.sql')}"
        for owner in root.iterdir()
        if owner.is_dir() and not owner.name.startswith("_")
        for f in owner.iterdir()
        if f.name.endswith(".sql")
    )
