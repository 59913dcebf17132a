"""The DuckDB warehouse: connection and the tables the Python stages own."""

from .connection import connect
from .schema import ensure_schema

__all__ = ["connect", "ensure_schema"]
