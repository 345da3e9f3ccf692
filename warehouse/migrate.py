"""Apply `sql/schema/*.sql` then `sql/views/*.sql` in name order; safe to run twice or more."""

from __future__ import annotations

import hashlib
from importlib import resources

import duckdb

from warehouse.connect import transaction


def sql_files(folder: str) -> list[tuple[str, str]]:
    """(name, text) of every `.sql` file in `sql/<folder>`, sorted by name."""
    root = resources.files("sql") / folder
    files = sorted((p for p in root.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(f"{folder}/{p.name}", p.read_text()) for p in files]


def read_query(name: str) -> str:
    """The text of `sql/queries/<name>.sql`: a parameterised statement used by the Python code."""
    return (resources.files("sql") / "queries" / f"{name}.sql").read_text()


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create schemas, tables and views; returns the files applied. Every file is idempotent."""
    applied = []
    with transaction(con):
        for name, text in sql_files("schema") + sql_files("views"):
            con.execute(text)
            digest = hashlib.sha256(text.encode()).hexdigest()
            con.execute(
                "INSERT OR REPLACE INTO main.schema_migrations (name, sha256) VALUES (?, ?)",
                [name, digest],
            )
            applied.append(name)
    return applied
