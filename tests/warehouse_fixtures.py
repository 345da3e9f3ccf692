"""Moved: `tiny_warehouse` lives in tests/helpers.py (kept here for tests that still import it)."""

from tests.helpers import tiny_warehouse

__all__ = ["tiny_warehouse"]
