"""Bring a warehouse's schema up to date: `sql/schema/*.sql`, the threshold macros, then
`sql/views/*.sql`, in name order. Every file is idempotent. Files already applied with the same
text (their SHA-256 in `main.schema_migrations`) are not run again until one before them runs
(a changed file, or a one-off move whose `-- when:` holds); from there on every file runs, so
views are made again over what changed. Opening an up-to-date warehouse for writing thus
changes nothing in the file."""

from __future__ import annotations

import hashlib
from importlib import resources

import duckdb

from degae_tools.thresholds import SQL_MACROS

WHEN = "-- when:"


def sql_files(folder: str) -> list[tuple[str, str]]:
    """(name, text) of every `.sql` file in `sql/<folder>`, sorted by name."""
    root = resources.files("sql") / folder
    files = sorted((p for p in root.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(f"{folder}/{p.name}", p.read_text()) for p in files]


def macros() -> list[tuple[str, str]]:
    """(name, statement) of the threshold macros the views use, from degae_tools.thresholds."""
    return [
        (f"macro/{name}", f"CREATE OR REPLACE MACRO core.{name}() AS {float(value)!r}")
        for name, value in SQL_MACROS.items()
    ]


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create schemas, tables, macros and views on an open connection (inside the caller's
    transaction); returns the names applied."""
    applied = []
    done = recorded(con)
    for name, text in sql_files("schema") + macros() + sql_files("views"):
        digest = hashlib.sha256(text.encode()).hexdigest()
        if not applied and done.get(name) == digest and not text.startswith(WHEN):
            continue
        if not applies(con, text):
            continue
        con.execute(text)
        con.execute(
            "INSERT OR REPLACE INTO main.schema_migrations (name, sha256) VALUES ($name, $sha)",
            {"name": name, "sha": digest},
        )
        applied.append(name)
    return applied


def recorded(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """name -> SHA-256 of the files applied so far (none in a new warehouse)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE schema_name = 'main' AND table_name = 'schema_migrations'"
    ).fetchall()[0][0]
    return (
        dict(con.execute("SELECT name, sha256 FROM main.schema_migrations").fetchall())
        if exists
        else {}
    )


def applies(con: duckdb.DuckDBPyConnection, text: str) -> bool:
    """Whether a file runs: one whose first line is `-- when: <query>` runs only when that query
    answers true (a one-off move of an old warehouse's table, say); every other file runs."""
    first = text.split("\n", 1)[0]
    if not first.startswith(WHEN):
        return True
    return bool(con.sql(first.removeprefix(WHEN)).fetchall()[0][0])
