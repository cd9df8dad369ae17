"""The state store (SPEC section 7): SQLite by default, PostgreSQL by URL.

Open it with :func:`open_store`, group writes with :meth:`Store.transaction`, call the
functions of :mod:`sync.store.repo` with that transaction's connection, and hold
:func:`run_lock` for the length of a cycle (a ``serve`` shard job on PostgreSQL holds it
shared, :func:`shard_lock`).
"""

from __future__ import annotations

from sync.store.db import (
    Store,
    StoreError,
    current_revision,
    default_state_path,
    default_url,
    head_revision,
    open_store,
    open_store_for_reading,
    upgrade,
)
from sync.store.locks import LockHeld, run_lock, shard_lock

__all__ = [
    "LockHeld",
    "Store",
    "StoreError",
    "current_revision",
    "default_state_path",
    "default_url",
    "head_revision",
    "open_store",
    "open_store_for_reading",
    "run_lock",
    "shard_lock",
    "upgrade",
]
