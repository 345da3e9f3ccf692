"""Users' SQL: run a query read-only (unless asked to write) and print or export its result."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from degae_tools import console
from degae_tools.errors import WarehouseError
from warehouse.connect import connect


def run_query(
    db_path: Path,
    query: str,
    fmt: str = "table",
    out: Path | None = None,
    write: bool = False,
    limit: int = 50,
) -> int:
    """Run `query`; print a table, or write csv/json/parquet to `out` (stdout for csv/json).

    Read-only connections make DuckDB itself refuse writes, so a `DELETE` without `--write` fails
    with a clear error instead of changing anything. Returns the number of result rows.
    """
    con = connect(db_path, write=write)
    try:
        result = con.sql(query)
        table = result.to_arrow_table() if result is not None else None
    except duckdb.Error as exc:
        msg = str(exc).splitlines()[0]
        if not write and "read-only" in msg.lower():
            msg += " (the warehouse is opened read-only; pass --write to change it)"
        raise WarehouseError(f"query failed: {msg}") from exc
    finally:
        con.close()
    if table is None:
        console.say("ok")
        return 0
    try:
        _write(table, fmt, out, limit)
    except OSError as exc:
        raise WarehouseError(f"cannot write {out}: {exc.strerror or exc}") from exc
    return table.num_rows


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
        text = _to_json(table)
        if out is None:
            print(text)
        else:
            out.write_text(text + "\n")
    else:
        rows = table.to_pylist()
        shown = rows if limit <= 0 else rows[:limit]
        console.show_table(table.column_names, [list(r.values()) for r in shown])
        if len(shown) < len(rows):
            console.say(f"({len(rows)} rows, {len(shown)} shown; --limit 0 for all)")


def _to_json(table) -> str:
    import json

    return json.dumps(table.to_pylist(), default=str)
