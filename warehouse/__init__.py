"""The only Python that talks to DuckDB: connect, migrate, load and export."""

from warehouse.connect import connect, default_db_path
from warehouse.migrate import migrate

__all__ = ["connect", "default_db_path", "migrate"]
