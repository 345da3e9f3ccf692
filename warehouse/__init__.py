"""The warehouse layer: one handle on a DuckDB file (`Warehouse`), its schema, named queries,
Arrow exports and user queries. It knows tables, not biology: readers and rules sit above it."""

# Transitional, until every step takes a Warehouse: the old connection helpers.
from warehouse.connect import connect  # noqa: E402
from warehouse.handle import Warehouse, default_db_path, open_warehouse
from warehouse.migrate import migrate  # noqa: E402
from warehouse.queries import Query

__all__ = ["Query", "Warehouse", "connect", "default_db_path", "migrate", "open_warehouse"]
