"""Crash-safe instance state in SQLite (WAL): tags, snapshots, containers."""

from .db import connect, transaction

__all__ = ["connect", "transaction"]
