"""A warehouse's fingerprint: row count and order-independent checksum of every table.

Two warehouses built from the same inputs have the same fingerprint whatever was interrupted
and rerun on the way: timestamps, durations, file paths and the raw text of rejected rows are
left out, and for ml tables the float columns too (a resumed training matches to a tolerance).
"""

from __future__ import annotations

import duckdb

SKIPPED_TYPES = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
SKIPPED_NAMES = {"seconds", "path", "source_file", "parquet_path", "source", "record"}
ML_SKIPPED_TYPES = ("DOUBLE", "FLOAT", "FLOAT[]", "DOUBLE[]")
ML_SKIPPED_NAMES = {"metrics", "config", "snapshot"}


def fingerprint(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """`{schema.table: (rows, checksum)}` over the raw, core and ml base tables."""
    columns = con.sql(
        "SELECT c.table_schema, c.table_name, c.column_name, c.data_type "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "USING (table_schema, table_name) "
        "WHERE c.table_schema IN ('raw', 'core', 'ml') AND t.table_type = 'BASE TABLE' "
        "ORDER BY 1, 2, c.ordinal_position"
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for schema, table, column, dtype in columns:
        skip = dtype in SKIPPED_TYPES or column in SKIPPED_NAMES
        if schema == "ml":
            skip = skip or dtype in ML_SKIPPED_TYPES or column in ML_SKIPPED_NAMES
        kept = tables.setdefault(f"{schema}.{table}", [])
        if not skip:
            kept.append(f'"{column}"')
    result = {}
    for table, cols in tables.items():
        # Names come from the catalogue, never from input files.
        row_hash = f"hash({', '.join(cols)})::HUGEINT" if cols else "0"
        n, checksum = con.sql(
            f"SELECT count(*), coalesce(sum({row_hash}), 0) FROM {table}"
        ).fetchall()[0]
        result[table] = (int(n), int(checksum))
    return result
