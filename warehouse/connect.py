"""Open the warehouse file: read-only unless writing, with a bounded wait for the writer's lock."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from degae_tools.errors import WarehouseError

DEFAULT_DB = Path("warehouse") / "degae.duckdb"
# A writer refuses to start with less free space than this next to the warehouse: a step that
# runs out of disk half-way is rolled back safely, but Prefect's own run database on the same
# disk is not, and fails with pages of server tracebacks.
DEFAULT_MIN_FREE_MB = 256


def default_db_path() -> Path:
    """`$DEGAE_DB` if set, else `warehouse/degae.duckdb` under the current directory."""
    return Path(os.environ.get("DEGAE_DB") or DEFAULT_DB)


def min_free_mb() -> float:
    """`$DEGAE_MIN_FREE_MB` if set (0 turns the check off), else DEFAULT_MIN_FREE_MB."""
    value = os.environ.get("DEGAE_MIN_FREE_MB") or DEFAULT_MIN_FREE_MB
    try:
        return float(value)
    except ValueError:
        raise WarehouseError(f"DEGAE_MIN_FREE_MB must be a number of MB, got {value!r}") from None


def check_free_space(folder: Path) -> None:
    """Fail before writing, not half-way, when the warehouse's disk is (nearly) full."""
    needed = min_free_mb()
    free = shutil.disk_usage(folder).free / 2**20
    if free < needed:
        raise WarehouseError(
            f"only {free:,.0f} MB free on the disk of {folder}; writing the warehouse needs at "
            f"least {needed:,.0f} MB. Free some space (or set DEGAE_MIN_FREE_MB) and run again."
        )


def connect(
    db_path: str | Path | None = None, write: bool = False, wait_s: float = 30.0
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; a writer creates it if missing, a reader needs it to exist.

    A writer first checks that the disk has `$DEGAE_MIN_FREE_MB` (default 256) free.
    DuckDB allows one writing process; while another process holds the file we retry for up to
    `wait_s` seconds, then fail with a WarehouseError that says who to wait for.
    """
    path = Path(db_path) if db_path is not None else default_db_path()
    if not write and not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `degae-tools init --db {path}` first")
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not os.access(path, os.W_OK):
            raise WarehouseError(f"warehouse {path} is read-only: cannot write to it")
        check_free_space(path.parent)
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=not write)
            con.execute("SET enable_progress_bar = false")
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise WarehouseError(f"cannot open {path}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    return con


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
        raise WarehouseError(
            f"could not write the warehouse, so this step's changes were rolled back and "
            f"everything committed before it is kept ({exc}). Free disk space (or raise the "
            f"file-size limit) and run the same command again: it carries on where it stopped."
        ) from exc
