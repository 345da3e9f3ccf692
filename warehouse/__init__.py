"""The warehouse layer: one handle on a DuckDB file (`Warehouse`), its schema, named queries,
Arrow exports and user queries. It knows tables, not biology: readers and rules sit above it."""

from warehouse.handle import Warehouse, default_db_path, open_warehouse
from warehouse.queries import Query

__all__ = ["Query", "Warehouse", "default_db_path", "open_warehouse"]
