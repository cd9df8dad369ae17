"""Alembic migrations of the state store, configured in code by :mod:`sync.store.db`."""
