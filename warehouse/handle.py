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
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from degae_tools.errors import DamagedWarehouseError, WarehouseError
from warehouse.queries import Query

DEFAULT_DB = Path("degae.duckdb")
# A writer refuses to start with less free space than this next to the warehouse: a step that
# runs out of disk half-way is rolled back safely, but Prefect's own run database on the same
# disk is not, and fails with pages of server tracebacks.
DEFAULT_MIN_FREE_MB = 256
# How long a command waits for another process that holds the warehouse (a writer waits for
# readers, a reader for a writer) before it gives up and says who holds it.
DEFAULT_LOCK_WAIT_S = 30.0

Params = Mapping[str, Any] | None
Rows = pl.DataFrame | pa.Table


def default_db_path() -> Path:
    """`$DEGAE_DB` if set, else `degae.duckdb` in the current directory."""
    return Path(os.environ.get("DEGAE_DB") or DEFAULT_DB)


def min_free_mb() -> float:
    """`$DEGAE_MIN_FREE_MB` if set (0 turns the check off), else DEFAULT_MIN_FREE_MB."""
    value = os.environ.get("DEGAE_MIN_FREE_MB") or DEFAULT_MIN_FREE_MB
    try:
        return float(value)
    except ValueError:
        raise WarehouseError(f"DEGAE_MIN_FREE_MB must be a number of MB, got {value!r}") from None


def lock_wait_s() -> float:
    """`$DEGAE_LOCK_WAIT_S` if set, else DEFAULT_LOCK_WAIT_S (seconds)."""
    value = os.environ.get("DEGAE_LOCK_WAIT_S") or DEFAULT_LOCK_WAIT_S
    try:
        return float(value)
    except ValueError:
        raise WarehouseError(f"DEGAE_LOCK_WAIT_S must be seconds, got {value!r}") from None


def check_free_space(folder: Path) -> None:
    """Fail before writing, not half-way, when the warehouse's disk is (nearly) full."""
    needed = min_free_mb()
    free = shutil.disk_usage(folder).free / 2**20
    if free < needed:
        raise WarehouseError(
            f"only {free:,.0f} MB free on the disk of {folder}; writing the warehouse needs at "
            f"least {needed:,.0f} MB. Free some space (or set DEGAE_MIN_FREE_MB) and run again."
        )


# What DuckDB says about a warehouse file it cannot use, and what the user should do about it.
# Each rule: a pattern of DuckDB's (or the OS's) message, and the one line degae says instead.
LOCK_HOLDER = re.compile(r"lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
DISK_FULL = ("no space left", "file too large", "disk quota")
HEADERS_BYTES = 3 * 4096  # DuckDB's file header and two database headers, before the blocks
TRUNCATED = Exception("could not read enough bytes")  # what DuckDB says when it finds out


def is_lock_error(exc: BaseException) -> bool:
    """Whether DuckDB refused the file because another process holds it."""
    lower = str(exc).lower()
    return "could not set lock" in lower or "conflicting lock" in lower


def lock_holder(exc: BaseException) -> str | None:
    """'PID 123 (/usr/bin/python3)' from DuckDB's lock error, or None if it names nobody."""
    match = LOCK_HOLDER.search(str(exc))
    return f"PID {match['pid']} ({match['program']})" if match else None


def file_error(exc: BaseException, path: str | Path | None = None) -> WarehouseError | None:
    """The named error for a warehouse file DuckDB could not use, or None when `exc` is about
    something else (a query's mistake, say). Nothing is written after any of these."""
    text = str(exc)
    lower = text.lower()
    name = f"the warehouse {path}" if path else "the warehouse file"
    check = f"`degae-tools check --db {path}`" if path else "`degae-tools check`"
    if "not a valid duckdb database file" in lower:
        message = (
            f"{name} is damaged or not a DuckDB warehouse (its header is unreadable); restore "
            f"it from a copy, or move it aside and rebuild it with `degae-tools ingest` on the "
            f"source folder"
        )
    elif "corrupt database file" in lower or "checksum" in lower:
        detail = text.splitlines()[0]
        return DamagedWarehouseError(
            f"{name} is damaged ({detail}); run {check} to see which tables, and rebuild them "
            "from the source folders",
            detail,
        )
    elif "could not read enough bytes" in lower:
        message = (
            f"{name} is truncated (shorter than its own header says: an interrupted copy or "
            "download?); restore the whole file, or move it aside and rebuild it with "
            "`degae-tools ingest` on the source folder"
        )
    elif is_lock_error(exc):
        holder = lock_holder(exc) or "another process"
        message = (
            f"{name} is in use by {holder}; wait for it to finish (or stop it), or wait longer "
            "with DEGAE_LOCK_WAIT_S=seconds"
        )
    elif "permission denied" in lower:
        message = (
            f"no permission to use {name} or its folder ({_first_line(text)}); fix the file's "
            "and folder's permissions, or point --db at a warehouse you may use"
        )
    else:  # a full disk or a read-only mount: the CLI's edge says so for any file
        return None
    return WarehouseError(message)


def about_the_file(exc: BaseException, path: Path) -> bool:
    """Whether DuckDB's error is about the warehouse file (not a file a query reads or writes):
    it names the file, or its blocks."""
    lower = str(exc).lower()
    return str(path) in str(exc) or any(
        word in lower for word in ("corrupt database file", "checksum", "could not read enough")
    )


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else text


def _arrow(rows: Rows) -> pa.Table:
    return rows.to_arrow() if isinstance(rows, pl.DataFrame) else rows


class Warehouse:
    """A warehouse file: where it is, whether this command may write it, and its connections."""

    def __init__(
        self,
        path: str | Path,
        *,
        write: bool = False,
        wait_s: float | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.write = write
        self.wait_s = lock_wait_s() if wait_s is None else wait_s
        # DuckDB settings every connection opens with (a user's query runs sandboxed this way).
        self.settings = dict(settings or {})
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
        wait_s: float | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Warehouse:
        """The warehouse at `path` (default `$DEGAE_DB`, then `./degae.duckdb`).

        Only a command that loads data may `create` a missing file, and only in an existing
        folder; every other command needs the file to exist. A writer first checks that the
        disk has `$DEGAE_MIN_FREE_MB` free, and brings the schema up to date. `wait_s`: how
        long to wait for another process holding the file (default `$DEGAE_LOCK_WAIT_S`, 30).
        """
        path = Path(path) if path is not None else default_db_path()
        check_path(path, create=create)
        if write:
            check_writable(path)
            check_free_space(path.parent)
        wh = cls(path, write=write, wait_s=wait_s, settings=settings)
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
        """Where models go unless a command names a folder: `<db folder>/<db name>_models/`."""
        return self.path.parent / f"{self.path.stem}_models"

    # --- connections ---------------------------------------------------------------------------

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting up to `wait_s` while another process holds it."""
        return connect_file(self.path, write=self.write, wait_s=self.wait_s, settings=self.settings)

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One connection for the block (re-entrant): several reads without reopening the file."""
        if self._con is None:
            self._con = self._connect()
        self._depth += 1
        try:
            yield self._con
        except duckdb.Error as exc:
            # A damaged block is found when it is read: say which file, not only which block.
            named = file_error(exc, self.path)
            if named is None or not about_the_file(exc, self.path):
                raise
            raise named from exc
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
                raise commit_error(exc, self.path) from exc

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
            reader = con.sql(str(query), params=dict(params) if params else None)
            reader = reader.to_arrow_reader(batch_rows)
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
        return self._write_rows("INSERT INTO", table, rows)

    def upsert(self, table: str, rows: Rows) -> int:
        """INSERT OR REPLACE `rows` into `table`, keyed on its primary key, columns by name."""
        return self._write_rows("INSERT OR REPLACE INTO", table, rows)

    def _write_rows(self, verb: str, table: str, rows: Rows) -> int:
        arrow = _arrow(rows)
        if arrow.num_rows == 0:
            return 0
        with self.transaction():
            target = self._table_name(table)
            with self._bound({"_incoming": arrow}):
                self._con.execute(f"{verb} {target} BY NAME SELECT * FROM _incoming")
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


def check_path(path: Path, *, create: bool) -> None:
    """The rule for `--db`: a missing file is an error unless this command creates warehouses,
    and even then only in an existing folder that it may write."""
    if path.exists():
        return
    if not create:
        raise WarehouseError(
            f"no warehouse at {path}: run `degae-tools init --db {path}` (or ingest into it) "
            "first, or point --db at an existing one"
        )
    if not path.parent.is_dir():
        raise WarehouseError(
            f"cannot create a warehouse at {path}: the folder {path.parent} does not exist "
            "(create it first, or fix the --db path)"
        )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise WarehouseError(
            f"cannot create a warehouse at {path}: no permission to write in {path.parent} "
            "(choose a folder you may write, or fix its permissions)"
        )


def check_writable(path: Path) -> None:
    """Before a writer opens `path`: the file can be read and written, and a write-ahead log
    left by a killed writer can be replayed and removed. DuckDB replays that log into the file
    as it opens it, so a folder that refuses the log's removal would see the file changed by a
    command that then fails."""
    if not path.exists():
        return
    if not os.access(path, os.R_OK):
        raise WarehouseError(
            f"no permission to read the warehouse {path}; fix the file's permissions, or point "
            "--db at a warehouse you may use"
        )
    if not os.access(path, os.W_OK):
        raise WarehouseError(f"warehouse {path} is read-only: cannot write to it")
    wal = path.with_name(path.name + ".wal")
    if wal.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        raise WarehouseError(
            f"the warehouse {path} has a write-ahead log ({wal.name}) left by a writer that "
            f"stopped, and its folder {path.parent} may not be written, so the log cannot be "
            "replayed and removed; fix the folder's permissions (a reader such as `sql` still "
            "sees the data)"
        )


def connect_file(
    path: Path, *, write: bool, wait_s: float, settings: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `path`. While another process holds the file (DuckDB lets one
    process write, or several read) this waits up to `wait_s`, saying once whom it waits for;
    a file it cannot use is a named WarehouseError (damaged, truncated, permission, ...)."""
    config = dict(settings or {})
    lock = config.pop("lock_configuration", False)
    deadline = time.monotonic() + wait_s
    delay = 0.05
    said = False
    while True:
        try:
            con = duckdb.connect(str(path), read_only=not write, config=config)
            con.execute("SET enable_progress_bar = false")
            if write:
                check_length(con, path)
            if lock:  # last: nothing after this can change a setting
                con.execute("SET lock_configuration = true")
            return con
        except duckdb.Error as exc:
            locked = is_lock_error(exc)
            if locked and time.monotonic() < deadline:
                if not said:
                    _say_waiting(path, exc, deadline - time.monotonic())
                    said = True
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            named = file_error(exc, path)
            if locked and named is not None:
                named = WarehouseError(f"{named} (gave up after {wait_s:g} s)")
            raise (named or WarehouseError(f"cannot open {path}: {exc}")) from exc


def check_length(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse to write a file shorter than its own header says (an interrupted copy): a
    checkpoint into it would overwrite what is left. DuckDB finds out only when it reads a
    block past the end."""
    [(block_size, used)] = con.sql(
        "SELECT block_size, total_blocks - free_blocks FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchall()
    # Blocks past the last one used may never have been written (a killed checkpoint leaves
    # them so): only a file too short for the blocks in use is truncated.
    if path.stat().st_size < HEADERS_BYTES + block_size * used:
        con.close()
        raise WarehouseError(
            f"{file_error(TRUNCATED, path)} ({path.stat().st_size:,} bytes, its header "
            f"counts {used} blocks of {block_size:,} in use)"
        )


def _say_waiting(path: Path, exc: BaseException, seconds: float) -> None:
    """One line on stderr (not wrapped), unless the command was asked to be quiet."""
    from degae_tools import console

    if not (console.mode.quiet or console.mode.json):
        holder = lock_holder(exc) or "another process"
        print(f"waiting up to {seconds:.0f} s for {holder}, which holds {path}", file=sys.stderr)


def commit_error(exc: duckdb.Error, path: Path | None) -> WarehouseError:
    """A COMMIT the file refused: DuckDB has rolled it back, so nothing of it is kept."""
    named = file_error(exc, path)
    if named is None or any(word in str(exc).lower() for word in DISK_FULL):
        return WarehouseError(
            f"could not write the warehouse, so this step's changes were rolled back and "
            f"everything committed before it is kept ({exc}). Free disk space (or raise the "
            f"file-size limit) and run the same command again: it carries on where it stopped."
        )
    return WarehouseError(
        f"{named}. This step's changes were rolled back; everything committed before it is kept."
    )


def open_warehouse(
    path: str | Path | None = None, *, write: bool = False, create: bool = False
) -> Warehouse:
    """`Warehouse.open`, for callers that prefer a function."""
    return Warehouse.open(path, write=write, create=create)


def as_rows(columns: Sequence[str], values: Sequence[Sequence[Any]]) -> pa.Table:
    """A small Arrow table from column names and row tuples (for run and metric rows)."""
    return pa.table({c: [v[i] for v in values] for i, c in enumerate(columns)})
