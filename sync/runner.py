"""Running cycles: once (``run``) or on a schedule (``serve``), with the right lock.

SQLite: one worker at a time, under the run lock; it owns every shard. PostgreSQL: each
worker leases its share of the shards (sync.cycle.ownership), so several can run side by side;
a `run` that finds every shard leased by others exits 4 like a locked SQLite store.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sync.config import Config
from sync.cycle.ownership import give_back, kept_alive, lease
from sync.engine import CycleOptions, CycleResult, Engine
from sync.remote import build_remotes
from sync.store import LockHeld, Store, run_lock


def lease_ttl(config: Config) -> timedelta:
    """How long a shard stays leased without renewal: a dead worker's shards free up after."""
    return timedelta(seconds=config.serve.lease_seconds)


def worker_name(kind: str) -> str:
    """A worker's name: what it is, where, which process."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


def one_cycle(config: Config, store: Store, options: CycleOptions) -> CycleResult:
    """One cycle for `run` (LockHeld when another run or worker has the store)."""
    owner = worker_name("run")
    engine = Engine(config, store, build_remotes(config), worker=owner)
    if options.dry_run:
        return engine.run(options)  # writes nothing, so it needs no lock or lease
    if store.dialect != "postgresql":
        with run_lock(store.engine, owner):
            return engine.run(options)
    work = lease(store, config, owner, lease_ttl(config))
    try:
        if work.empty:
            raise LockHeld(
                "other workers hold every shard of this state store (see `jira-crm-sync "
                "status`); wait for them, or stop them, and run again"
            )
        with kept_alive(store, owner, work, lease_ttl(config)):
            return engine.run(options, work)
    finally:
        give_back(store, owner)
