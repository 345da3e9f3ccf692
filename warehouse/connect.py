"""Open the warehouse file: read-only unless writing, with a bounded wait for the writer's lock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from degae_tools.errors import WarehouseError
from warehouse.handle import (
    DEFAULT_DB,
    DEFAULT_MIN_FREE_MB,
    check_free_space,
    commit_error,
    connect_file,
    default_db_path,
    lock_wait_s,
    min_free_mb,
)

__all__ = [
    "DEFAULT_DB",
    "DEFAULT_MIN_FREE_MB",
    "check_free_space",
    "connect",
    "default_db_path",
    "fetch_frame",
    "fetch_one",
    "min_free_mb",
    "transaction",
]


def connect(
    db_path: str | Path | None = None, write: bool = False, wait_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; a writer creates it if missing, a reader needs it to exist.

    A writer first checks that the disk has `$DEGAE_MIN_FREE_MB` (default 256) free. While
    another process holds the file this waits up to `wait_s` (default `$DEGAE_LOCK_WAIT_S`),
    then fails with a WarehouseError that says who holds it; a damaged file is named as such.
    """
    path = Path(db_path) if db_path is not None else default_db_path()
    if not write and not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `degae-tools init --db {path}` first")
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not os.access(path, os.W_OK):
            raise WarehouseError(f"warehouse {path} is read-only: cannot write to it")
        check_free_space(path.parent)
    wait = lock_wait_s() if wait_s is None else wait_s
    return connect_file(path, write=write, wait_s=wait)


def fetch_frame(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None):
    """Run a query and return all its rows as a polars DataFrame (via Arrow, no copies)."""
    import polars as pl

    # DuckDB 2 keeps an execute() result open until it is fully fetched; a relation does not.
    return pl.from_arrow(con.sql(query, params=params or None).to_arrow_table())


def fetch_one(con: duckdb.DuckDBPyConnection, query: str, params: list | None = None) -> tuple:
    """The first row of a query's result (None when it has no rows)."""
    rows = con.sql(query, params=params or None).fetchall()
    return rows[0] if rows else None


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, rolled back on any exception; a COMMIT that cannot be written is a
    WarehouseError that says so (DuckDB has already rolled it back: nothing of it is kept)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        # A statement that failed fatally may have ended the transaction itself; the error that
        # matters is the one being raised, not "no transaction is active".
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    try:
        con.execute("COMMIT")
    except duckdb.Error as exc:
        raise commit_error(exc, None) from exc
