"""Users' SQL: run one query read-only (unless asked to write) and print or export its result.

A read-only query is sandboxed by DuckDB itself: no file outside the warehouse can be read or
written (`enable_external_access`), no extension installed or loaded, and the configuration is
locked, so `SET`/`PRAGMA` cannot turn any of that back on. Only one statement runs at a time,
and only one that reads (`SELECT`, `EXPLAIN`, `PRAGMA`, `CALL`, `SHOW`/`DESCRIBE`/`SUMMARIZE`).
`--allow-files` turns file access back on (`read_csv`, `COPY … TO`); `--write` lifts it all.
Exports (`--format csv|json|parquet --out FILE`) are written by degae, not by DuckDB.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from degae_tools import console
from degae_tools.errors import WarehouseError
from warehouse.handle import Warehouse, about_the_file, file_error

# DuckDB settings of a read-only query. Locking the configuration comes last: nothing after it
# can change these (or threads, memory_limit, temp_directory, extension repositories ...).
SANDBOX = {
    "enable_external_access": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}
READING = {"SELECT", "EXPLAIN", "PRAGMA", "CALL"}
# DuckDB's error for `FROM '/some/file'` when files cannot be read: the path taken as a table name.
FILE_AS_TABLE = re.compile(r"Table with name ([^\s!]*[/.][^\s!]*) does not exist!?")
FILES = {"COPY", "EXPORT"}


def run_query(
    db_path: Path,
    query: str,
    fmt: str = "table",
    out: Path | None = None,
    write: bool = False,
    limit: int = 50,
    allow_files: bool = False,
) -> int:
    """Run `query`; print a table, or write csv/json/parquet to `out` (stdout for csv/json).

    Without `write` the warehouse is opened read-only and the query sandboxed (see above), so a
    `DELETE` or a `COPY … TO` fails with a clear error instead of changing anything. Returns the
    number of result rows.
    """
    settings = None if write else {**SANDBOX, "enable_external_access": allow_files}
    wh = Warehouse.open(db_path, write=write, settings=settings)
    with wh.session() as con:
        if not write:
            check_statement(con, query, allow_files)
        try:
            result = con.sql(query)
            table = result.to_arrow_table() if result is not None else None
        except duckdb.Error as exc:
            raise query_error(exc, wh.path, write, allow_files) from exc
    if table is None:
        console.say("ok")
        return 0
    try:
        _write(table, fmt, out, limit)
    except OSError as exc:
        raise WarehouseError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return table.num_rows


def check_statement(con: duckdb.DuckDBPyConnection, query: str, allow_files: bool) -> None:
    """Refuse several statements in one string, and a statement that is not a read."""
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise WarehouseError(f"query failed: {exc}") from exc
    if len(statements) != 1:
        raise WarehouseError(
            f"query failed: {len(statements)} statements given; without --write, run one "
            "statement at a time"
        )
    kind = statements[0].type.name
    verb = first_word(query)
    if kind == "MULTI" and verb == "PIVOT":  # PIVOT reads: DuckDB runs it as two statements
        return
    allowed = READING | (FILES if allow_files else set())
    if kind not in allowed:
        hint = " or --allow-files to read and write files" if kind in FILES else ""
        raise WarehouseError(
            f"query failed: {verb or kind} is not allowed without --write: the warehouse is "
            f"opened read-only for queries (pass --write to change it{hint})"
        )


def first_word(query: str) -> str:
    """The statement's first keyword (INSTALL, where DuckDB's statement type says LOAD)."""
    words = re.sub(r"(--[^\n]*|/\*.*?\*/)", " ", query, flags=re.S).split()
    return words[0].upper().rstrip(";") if words else ""


def query_error(exc: duckdb.Error, path: Path, write: bool, allow_files: bool) -> WarehouseError:
    """DuckDB's whole message (its hint, candidate names and the `LINE 1 … ^` caret), with
    what degae's sandbox adds to it; a damaged warehouse file is named as such."""
    text = str(exc)
    named = file_error(exc, path)
    if named is not None and about_the_file(exc, path):
        return named
    lower = text.lower()
    if not write and "read-only" in lower:
        text += "\n(the warehouse is opened read-only; pass --write to change it)"
    elif not allow_files and "file system operations are disabled" in lower:
        text += "\n(queries cannot read or write files; pass --allow-files to let them)"
    elif not allow_files and FILE_AS_TABLE.search(text):
        # DuckDB reads `FROM 'file.csv'` as a file only when file access is on.
        text = FILE_AS_TABLE.sub(r"Table with name \1 does not exist", text).split("\n")[0]
        text += " (a file is read as a table only with --allow-files)"
    elif "configuration has been locked" in lower or "external extensions is disabled" in lower:
        text += "\n(settings and extensions are fixed for queries; pass --write to change them)"
    return WarehouseError(f"query failed: {text}")


def _write(table: pa.Table, fmt: str, out: Path | None, limit: int) -> None:
    """Print or export a result table in the chosen format."""
    if fmt == "parquet":
        if out is None:
            raise WarehouseError("--format parquet needs --out FILE")
        pq.write_table(table, out)
    elif fmt == "csv":
        if out is None:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink)
            sys.stdout.write(sink.getvalue().to_pybytes().decode())
        else:
            pacsv.write_csv(table, out)
    elif fmt == "json":
        text = json.dumps(table.to_pylist(), default=str)
        if out is None:
            print(text)
        else:
            out.write_text(text + "\n")
    else:
        shown = table if limit <= 0 else table.slice(0, limit)
        show_result(table.column_names, [list(r.values()) for r in shown.to_pylist()])
        if shown.num_rows < table.num_rows:
            console.say(f"({table.num_rows} rows, {shown.num_rows} shown; --limit 0 for all)")


def _cell(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def show_result(columns: list[str], rows: list[list]) -> None:
    """A table when it fits the terminal; otherwise one block per row (column: value, wrapped),
    like psql's expanded display, so no column is cut. Not a terminal and no $COLUMNS: the
    table at its full width."""
    if console.mode.json:
        console.show_table(columns, rows)
        return
    cells = [["" if v is None else _cell(v) for v in r] for r in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    natural = sum(widths) + 3 * len(widths) + 1  # rich's borders and padding
    width = shutil.get_terminal_size(fallback=(0, 0)).columns
    out = Console(file=sys.stdout, width=width or natural, soft_wrap=False)
    if not width or natural <= width:
        table = Table()
        for c in columns:
            table.add_column(c, no_wrap=True)
        for r in cells:
            table.add_row(*r)
        out.print(table)
        return
    name_width = max(len(c) for c in columns)
    for n, r in enumerate(cells, start=1):
        record = Table(title=f"row {n}", title_justify="left", show_header=False, expand=True)
        record.add_column(width=name_width, no_wrap=True, style="bold")
        record.add_column(overflow="fold")
        for c, v in zip(columns, r, strict=True):
            record.add_row(c, v)
        out.print(record)
