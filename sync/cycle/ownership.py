"""What a worker may work on: the one lock helper of ``run``, ``serve`` and
``reconcile --apply``.

:func:`ownership` is the context manager ``run`` and ``reconcile --apply`` enter before
they write: the store's run lock (:func:`sync.store.run_lock`; a file lock on SQLite, an
advisory lock on PostgreSQL), and with it every shard. When another holds it, it raises
:class:`~sync.store.LockHeld` (exit 4 through :func:`sync.exitcodes.exit_for`).

Several ``serve`` workers on PostgreSQL share a store's work through the task engine
(:mod:`sync.jobs`, procrastinate): each shard's cycle is a job, and procrastinate's
per-key job lock runs a shard on one worker at a time. Such a job holds the store's lock
*shared* (:func:`sync.store.locks.shard_lock`), so jobs of different shards run side by
side while ``run`` and ``reconcile --apply`` still need the store to themselves.

The shards are one per configured Jira project (``jira:<KEY>``; ``jira:*`` when the
scope is only a JQL clause) plus ``crm`` for the CRM pull; queued writes belong to their
Jira project's shard (:func:`shard_of_record`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sync.config import Config
from sync.store import Store, run_lock

if TYPE_CHECKING:
    from sync.cycle.engine import CycleOptions, CycleResult

CRM_SHARD = "crm"
JIRA_PREFIX = "jira:"
ALL_PROJECTS = "*"


@dataclass(frozen=True)
class Assignment:
    """The shards one cycle works on."""

    crm: bool
    projects: tuple[str, ...] | None  # None: the whole Jira scope

    @property
    def empty(self) -> bool:
        """No shard at all."""
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
    """All shards: what ``run`` and ``reconcile --apply`` work on under the run lock."""
    return Assignment(crm=True, projects=None)


def assignment_of(shards: Sequence[str]) -> Assignment:
    """The assignment a set of shard names stands for (one shard job: one name)."""
    projects = [s[len(JIRA_PREFIX) :] for s in shards if s.startswith(JIRA_PREFIX)]
    return Assignment(
        crm=CRM_SHARD in shards,
        projects=None if ALL_PROJECTS in projects else tuple(sorted(projects)),
    )


def shard_of_record(record_key: str, target: str) -> str:
    """The shard a queued write belongs to: its Jira project (CRM report keys start with it)."""
    project = record_key.split(":", 1)[0] if target == "crm" else record_key.rsplit("-", 1)[0]
    return JIRA_PREFIX + project


def worker_name(kind: str) -> str:
    """A worker's name: what it is, where, which process."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Held:
    """What :func:`ownership` gave: the work, and a check that the lock is still held."""

    owner: str
    work: Assignment
    still_mine: Callable[[], None]


@contextmanager
def ownership(store: Store, config: Config, owner: str) -> Iterator[Held]:
    """Hold the store's run lock for the ``with`` body, and with it every shard of
    ``config``; :class:`~sync.store.LockHeld` when another run, a reconcile, or a ``serve``
    job in flight holds it. ``still_mine`` raises :class:`~sync.store.LockHeld` once the
    lock is lost (its PostgreSQL session dropped): call it before writes that need the
    whole store (``reconcile --apply``)."""
    with run_lock(store.engine, owner) as lock:
        yield Held(owner, everything(), lock.check)


def one_cycle(config: Config, store: Store, options: CycleOptions) -> CycleResult:
    """One cycle for `run` over what this worker owns (:class:`LockHeld` when another run
    or serve job has the store). A dry run writes nothing, so it needs no lock."""
    # The engine imports this module (Assignment), so it is imported when a cycle runs.
    from sync.cycle.engine import Engine
    from sync.remote import build_remotes

    owner = worker_name("run")
    engine = Engine(config, store, build_remotes(config), worker=owner)
    if options.dry_run:
        return engine.run(options)
    with ownership(store, config, owner) as held:
        return engine.run(options, held.work)
