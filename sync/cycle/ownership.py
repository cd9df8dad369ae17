"""Sharing the work between several workers on one PostgreSQL state store.

The shards are one per configured Jira project (``jira:<KEY>``; ``jira:*`` when the
scope is only a JQL clause) plus ``crm`` for the CRM pull. A worker leases shards with
``SELECT ... FOR UPDATE SKIP LOCKED`` (see sync.store.repo.leases): two workers never hold the
same shard, and the shards of a worker that died are free again once its leases expire.
Each worker also leases a presence shard ``worker:<owner>``, so the others know how
many are alive and take a fair share: ceil(shards / live workers), handing back extras.

On SQLite there is one worker at a time (the run lock), and it owns every shard.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sync.config import Config
from sync.store import Store, lease_shards, release
from sync.store.repo.leases import list_leases, renew

log = logging.getLogger(__name__)

CRM_SHARD = "crm"
WORKER_PREFIX = "worker:"
JIRA_PREFIX = "jira:"
ALL_PROJECTS = "*"


@dataclass(frozen=True)
class Assignment:
    """The shards one cycle works on."""

    crm: bool
    projects: tuple[str, ...] | None  # None: the whole Jira scope

    @property
    def empty(self) -> bool:
        """Nothing to do: every shard belongs to someone else."""
        return not self.crm and self.projects == ()

    def shards(self) -> list[str]:
        """The shard names of this assignment (for the outbox)."""
        names = [CRM_SHARD] if self.crm else []
        if self.projects is None:
            names.append(JIRA_PREFIX + ALL_PROJECTS)
        else:
            names.extend(JIRA_PREFIX + p for p in self.projects)
        return names


def all_shards(config: Config) -> list[str]:
    """Every shard of a config."""
    projects = config.jira.projects or [ALL_PROJECTS]
    return [CRM_SHARD, *(JIRA_PREFIX + p for p in projects)]


def everything() -> Assignment:
    """All shards: the single worker of a SQLite store (or a test)."""
    return Assignment(crm=True, projects=None)


def assignment_of(shards: Sequence[str]) -> Assignment:
    """The assignment a set of leased shard names stands for."""
    projects = [s[len(JIRA_PREFIX) :] for s in shards if s.startswith(JIRA_PREFIX)]
    return Assignment(
        crm=CRM_SHARD in shards,
        projects=None if ALL_PROJECTS in projects else tuple(sorted(projects)),
    )


def shard_of_record(record_key: str, target: str) -> str:
    """The shard a queued write belongs to: its Jira project (CRM report keys start with it)."""
    project = record_key.split(":", 1)[0] if target == "crm" else record_key.rsplit("-", 1)[0]
    return JIRA_PREFIX + project


def lease(store: Store, config: Config, owner: str, ttl: timedelta) -> Assignment:
    """Lease this worker's fair share of the shards (renewing the ones it holds)."""
    if store.dialect != "postgresql":
        return everything()
    lease_shards(store.engine, owner, [WORKER_PREFIX + owner], ttl)
    now = datetime.now(UTC)
    leases = list_leases(store.engine)
    live = {
        lease.owner
        for lease in leases
        if lease.shard.startswith(WORKER_PREFIX)
        and lease.owner
        and lease.expires_at is not None
        and lease.expires_at > now
    }
    shards = all_shards(config)
    share = math.ceil(len(shards) / max(1, len(live)))
    mine = sorted(
        lease.shard
        for lease in leases
        if lease.owner == owner
        and lease.shard in shards
        and lease.expires_at is not None
        and lease.expires_at > now
    )
    if len(mine) > share:
        release(store.engine, owner, mine[share:])
    held = lease_shards(store.engine, owner, shards, ttl, limit=share)
    return assignment_of(held)


@contextmanager
def kept_alive(store: Store, owner: str, work: Assignment, ttl: timedelta) -> Iterator[None]:
    """Renew ``work``'s leases (and the presence shard) every third of ``ttl`` while the
    ``with`` body runs, so a cycle longer than the lease keeps its shards; a worker that
    dies stops renewing and its shards free up as before."""
    if store.dialect != "postgresql":
        yield
        return
    shards = [WORKER_PREFIX + owner, *work.shards()]
    done = threading.Event()

    def beat() -> None:
        while not done.wait(ttl.total_seconds() / 3):
            try:
                held = renew(store.engine, owner, shards, ttl)
            except Exception as exc:  # the next beat tries again; the cycle goes on
                log.warning("could not renew the shard leases of %s: %s", owner, exc)
                continue
            lost = sorted(set(shards) - set(held))
            if lost:
                log.warning("leases lost to another worker: %s", ", ".join(lost))

    thread = threading.Thread(target=beat, name=f"lease-renewal {owner}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def give_back(store: Store, owner: str) -> None:
    """Release every lease of ``owner`` (a one-shot `run`, or `serve` stopping)."""
    if store.dialect == "postgresql":
        release(store.engine, owner)
