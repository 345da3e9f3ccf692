"""Transitional: `read_query` and `migrate(con)` for modules not yet on `warehouse.Warehouse`."""

from __future__ import annotations

import duckdb

from warehouse.queries import Query
from warehouse.schema import migrate as _migrate
from warehouse.schema import sql_files

__all__ = ["migrate", "read_query", "sql_files"]


def read_query(name: str) -> str:
    """The text of `sql/queries/<owner>/<name>.sql`."""
    return Query(name).text


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create schemas, tables, macros and views in one transaction."""
    from warehouse.connect import transaction

    with transaction(con):
        return _migrate(con)
