"""One handle on one warehouse file, opened once per command (or flow run) and passed down.

The handle owns DuckDB: no step opens, closes or registers anything itself. A connection lives
for one `session()` (reads) or one `transaction()` (writes) and is closed at its end, so other
processes can read between a writer's short transactions, as DuckDB allows one writing process
per file. Outside a session every read opens its own short one.

    with Warehouse.open(path, write=True) as wh:
        pending = wh.frame(PENDING, {"settings": settings})
        with wh.transaction():
            wh.replace_rows("core.de_runs", runs, where={"contrast_id": ids})

Queries are SQL text or a `Query` read from `sql/queries/<owner>/<name>.sql`; parameters are
named (`$name`) and passed as a dict.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from degae_tools.errors import WarehouseError
from warehouse.queries import Query

DEFAULT_DB = Path("warehouse") / "degae.duckdb"
# A writer refuses to start with less free space than this next to the warehouse: a step that
# runs out of disk half-way is rolled back safely, but Prefect's own run database on the same
# disk is not, and fails with pages of server tracebacks.
DEFAULT_MIN_FREE_MB = 256

Params = Mapping[str, Any] | None
Rows = pl.DataFrame | pa.Table


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


def _arrow(rows: Rows) -> pa.Table:
    return rows.to_arrow() if isinstance(rows, pl.DataFrame) else rows


class Warehouse:
    """A warehouse file: where it is, whether this command may write it, and its connections."""

    def __init__(self, path: str | Path, *, write: bool = False, wait_s: float = 30.0) -> None:
        self.path = Path(path)
        self.write = write
        self.wait_s = wait_s
        self._con: duckdb.DuckDBPyConnection | None = None
        self._depth = 0
        self._in_transaction = False

    # --- opening -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        write: bool = False,
        create: bool = False,
        wait_s: float = 30.0,
    ) -> Warehouse:
        """The warehouse at `path` (default `$DEGAE_DB`, then `warehouse/degae.duckdb`).

        Only a command that loads data may `create` a missing file, and only in an existing
        folder; every other command needs the file to exist. A writer first checks that the
        disk has `$DEGAE_MIN_FREE_MB` free, and brings the schema up to date.
        """
        path = Path(path) if path is not None else default_db_path()
        if not path.exists():
            if not create:
                raise WarehouseError(
                    f"no warehouse at {path}: run `degae-tools init --db {path}` (or ingest into "
                    "it) first, or point --db at an existing one"
                )
            if not path.parent.is_dir():
                raise WarehouseError(
                    f"cannot create a warehouse at {path}: the folder {path.parent} does not "
                    "exist (create it first, or fix the --db path)"
                )
        if write:
            if path.exists() and not os.access(path, os.W_OK):
                raise WarehouseError(f"warehouse {path} is read-only: cannot write to it")
            check_free_space(path.parent)
        wh = cls(path, write=write, wait_s=wait_s)
        if write:
            wh.migrate()
        return wh

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection if a session left one open (the handle can be used again)."""
        if self._con is not None:
            with suppress(duckdb.Error):
                self._con.close()
            self._con = None
            self._depth = 0

    def __repr__(self) -> str:
        return f"Warehouse({str(self.path)!r}, write={self.write})"

    # --- where its files are -------------------------------------------------------------------

    @property
    def counts_dir(self) -> Path:
        """Where this warehouse keeps its counts: `<db folder>/<db name>_counts/`."""
        return self.path.parent / f"{self.path.stem}_counts"

    @property
    def models_dir(self) -> Path:
        """Where models go unless a command names a folder: `<db folder>/models/`."""
        return self.path.parent / "models"

    # --- connections ---------------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file, retrying for up to `wait_s` while another process holds its lock."""
        deadline = time.monotonic() + self.wait_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=not self.write)
                con.execute("SET enable_progress_bar = false")
                return con
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise WarehouseError(f"cannot open {self.path}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One connection for the block (re-entrant): several reads without reopening the file."""
        if self._con is None:
            self._con = self._connect()
        self._depth += 1
        try:
            yield self._con
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.close()

    @contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """BEGIN … COMMIT, rolled back on any exception. Nested blocks join the outer transaction.

        A COMMIT that cannot be written is a WarehouseError that says so (DuckDB has already
        rolled it back: nothing of it is kept)."""
        if not self.write:
            raise WarehouseError(f"{self.path} was opened read-only: this step cannot write it")
        with self.session() as con:
            if self._in_transaction:
                yield self
                return
            con.execute("BEGIN TRANSACTION")
            self._in_transaction = True
            try:
                yield self
            except BaseException:
                # A statement that failed fatally may have ended the transaction itself; the
                # error that matters is the one being raised, not "no transaction is active".
                with suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            finally:
                self._in_transaction = False
            try:
                con.execute("COMMIT")
            except duckdb.Error as exc:
                raise WarehouseError(
                    f"could not write the warehouse, so this step's changes were rolled back and "
                    f"everything committed before it is kept ({exc}). Free disk space (or raise "
                    f"the file-size limit) and run the same command again: it carries on where it "
                    f"stopped."
                ) from exc

    # --- reading -------------------------------------------------------------------------------

    def arrow(
        self, query: str | Query, params: Params = None, tables: Mapping[str, Rows] | None = None
    ) -> pa.Table:
        """All rows of a query as an Arrow table (`tables`: see `execute`)."""
        with self.session() as con, self._bound(tables or {}):
            # DuckDB 2 keeps an execute() result open until it is fully fetched; a relation not.
            return con.sql(str(query), params=dict(params) if params else None).to_arrow_table()

    def frame(
        self, query: str | Query, params: Params = None, tables: Mapping[str, Rows] | None = None
    ) -> pl.DataFrame:
        """All rows of a query as a polars DataFrame (via Arrow, no copies)."""
        return pl.from_arrow(self.arrow(query, params, tables))

    def rows(self, query: str | Query, params: Params = None) -> list[tuple]:
        """All rows of a query as tuples."""
        with self.session() as con:
            return con.sql(str(query), params=dict(params) if params else None).fetchall()

    def one(self, query: str | Query, params: Params = None) -> tuple | None:
        """The first row of a query (None when it has none)."""
        rows = self.rows(query, params)
        return rows[0] if rows else None

    def scalar(self, query: str | Query, params: Params = None) -> Any:
        """The first column of the first row (None when there is no row)."""
        row = self.one(query, params)
        return row[0] if row else None

    def record_batches(
        self, query: str | Query, params: Params = None, batch_rows: int = 1024
    ) -> Iterator[pa.RecordBatch]:
        """A query's rows as Arrow record batches, streamed (the session stays open meanwhile)."""
        with self.session() as con:
            reader = con.execute(str(query), dict(params) if params else None).to_arrow_reader(
                batch_rows
            )
            yield from reader

    def has_table(self, name: str) -> bool:
        """Whether `schema.table` (a table or a view) exists."""
        schema, _, table = name.partition(".")
        return bool(
            self.scalar(
                "SELECT count(*) FROM (SELECT 1 FROM duckdb_tables() WHERE schema_name = $s "
                "AND table_name = $t UNION ALL SELECT 1 FROM duckdb_views() "
                "WHERE schema_name = $s AND view_name = $t)",
                {"s": schema, "t": table},
            )
        )

    # --- writing -------------------------------------------------------------------------------

    def execute(
        self, query: str | Query, params: Params = None, tables: Mapping[str, Rows] | None = None
    ) -> None:
        """Run one statement inside a transaction (its own, unless one is open). `tables` are
        Arrow or polars tables the statement reads under the names given (`FROM incoming`)."""
        with self.transaction(), self._bound(tables or {}):
            self._con.execute(str(query), dict(params) if params else None)

    @contextmanager
    def _bound(self, tables: Mapping[str, Rows]) -> Iterator[None]:
        for name, rows in tables.items():
            self._con.register(name, _arrow(rows))
        try:
            yield
        finally:
            for name in tables:
                self._con.unregister(name)

    def _table_name(self, name: str) -> str:
        """`name` checked against the catalogue: only the warehouse's own tables are written."""
        schema, _, table = name.partition(".")
        known = self.scalar(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = $s AND table_name = $t",
            {"s": schema, "t": table},
        )
        if not known:
            raise WarehouseError(f"no table {name} in {self.path}")
        return f'{schema}."{table}"'

    def insert(self, table: str, rows: Rows) -> int:
        """Append `rows` to `table`, matching columns by name."""
        arrow = _arrow(rows)
        if arrow.num_rows == 0:
            return 0
        with self.transaction():
            target = self._table_name(table)
            with self._bound({"_incoming": arrow}):
                self._con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM _incoming")
        return arrow.num_rows

    def upsert(self, table: str, rows: Rows) -> int:
        """INSERT OR REPLACE `rows` into `table`, keyed on its primary key, columns by name."""
        arrow = _arrow(rows)
        if arrow.num_rows == 0:
            return 0
        with self.transaction():
            target = self._table_name(table)
            with self._bound({"_incoming": arrow}):
                self._con.execute(
                    f"INSERT OR REPLACE INTO {target} BY NAME SELECT * FROM _incoming"
                )
        return arrow.num_rows

    def delete(self, table: str, where: Mapping[str, Any]) -> None:
        """Delete the rows of `table` whose columns equal `where`'s values (a list: any of them)."""
        if not where:
            raise WarehouseError(f"refusing to delete every row of {table} without a condition")
        with self.transaction():
            target = self._table_name(table)
            clauses, params = [], {}
            for i, (column, value) in enumerate(where.items()):
                if not column.isidentifier():
                    raise WarehouseError(f"not a column name: {column!r}")
                if isinstance(value, Sequence) and not isinstance(value, str):
                    clauses.append(f'"{column}" IN (SELECT unnest($v{i}))')
                    value = list(value)
                else:
                    clauses.append(f'"{column}" = $v{i}')
                params[f"v{i}"] = value
            self._con.execute(f"DELETE FROM {target} WHERE {' AND '.join(clauses)}", params)

    def replace_rows(self, table: str, rows: Rows, where: Mapping[str, Any]) -> int:
        """Delete what `where` selects from `table` and insert `rows`, in one transaction: the
        register / delete-by-key / insert pattern of every step that rewrites its results."""
        with self.transaction():
            self.delete(table, where)
            return self.insert(table, rows)

    # --- schema --------------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Create or update schemas, tables, macros and views; returns the files applied."""
        from warehouse.schema import migrate

        with self.transaction():
            return migrate(self._con)


def open_warehouse(
    path: str | Path | None = None, *, write: bool = False, create: bool = False
) -> Warehouse:
    """`Warehouse.open`, for callers that prefer a function."""
    return Warehouse.open(path, write=write, create=create)


def as_rows(columns: Sequence[str], values: Sequence[Sequence[Any]]) -> pa.Table:
    """A small Arrow table from column names and row tuples (for run and metric rows)."""
    return pa.table({c: [v[i] for v in values] for i, c in enumerate(columns)})
