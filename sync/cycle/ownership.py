"""What a worker may work on: the one lock-or-lease helper of ``run``, ``serve`` and
``reconcile --apply``.

:func:`ownership` is the context manager every writer enters before it writes:

- SQLite: one worker at a time, under the run lock (:func:`sync.store.run_lock`); it owns
  every shard.
- PostgreSQL, ``whole=False`` (``run``, ``serve``): the worker leases its fair share of the
  shards, so several can run side by side, and keeps those leases alive while the ``with``
  body runs.
- PostgreSQL, ``whole=True`` (``reconcile --apply``): every shard, or nothing: a reconcile
  that writes needs the whole store to itself.

When nothing can be had it raises :class:`~sync.store.LockHeld` (exit 4 through
:func:`sync.exitcodes.exit_for`); :class:`AllLeased`, its subclass, says that other
workers lease every shard, which ``serve`` waits out rather than reports.

The shards are one per configured Jira project (``jira:<KEY>``; ``jira:*`` when the
scope is only a JQL clause) plus ``crm`` for the CRM pull. A worker leases shards with
``SELECT ... FOR UPDATE SKIP LOCKED`` (see sync.store.repo.leases): two workers never hold the
same shard, and the shards of a worker that died are free again once its leases expire.
Each worker also leases a presence shard ``worker:<owner>``, so the others know how
many are alive and take a fair share: ceil(shards / live workers), handing back extras.

Leases expire by the database's clock. Every function here takes ``clock``, a ``now()``
callable; left out, the database's clock is used; a test passes its own and moves time
by hand, so expiry, renewal, takeover and give-back are proved without waiting.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sync.config import Config
from sync.store import LockHeld, Store, lease_shards, release, renew, run_lock
from sync.store.repo.leases import live_leases

if TYPE_CHECKING:
    from sync.cycle.engine import CycleOptions, CycleResult

log = logging.getLogger(__name__)

#: A ``now()`` callable: the instant leases are judged at. None: the database's clock.
Clock = Callable[[], datetime]

CRM_SHARD = "crm"
WORKER_PREFIX = "worker:"
JIRA_PREFIX = "jira:"
ALL_PROJECTS = "*"


class AllLeased(LockHeld):
    """Other workers lease every shard of this PostgreSQL store: nothing left to do now."""


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


def lease_ttl(config: Config) -> timedelta:
    """How long a shard stays leased without renewal: a dead worker's shards free up after."""
    return timedelta(seconds=config.serve.lease_seconds)


def worker_name(kind: str) -> str:
    """A worker's name: what it is, where, which process."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


def _at(clock: Clock | None) -> datetime | None:
    return None if clock is None else clock()


def lease(
    store: Store, config: Config, owner: str, ttl: timedelta, *, clock: Clock | None = None
) -> Assignment:
    """Lease this worker's fair share of the shards (renewing the ones it holds).

    On SQLite every shard (the caller holds the run lock)."""
    if store.dialect != "postgresql":
        return everything()
    lease_shards(store.engine, owner, [WORKER_PREFIX + owner], ttl, now=_at(clock))
    live = live_leases(store.engine, now=_at(clock))
    workers = {record.owner for record in live if record.shard.startswith(WORKER_PREFIX)}
    shards = all_shards(config)
    share = math.ceil(len(shards) / max(1, len(workers)))
    mine = sorted(
        record.shard for record in live if record.owner == owner and record.shard in shards
    )
    if len(mine) > share:
        release(store.engine, owner, mine[share:])
    held = lease_shards(store.engine, owner, shards, ttl, limit=share, now=_at(clock))
    return assignment_of(held)


def give_back(store: Store, owner: str) -> None:
    """Release every lease of ``owner`` (a one-shot `run`, or `serve` stopping)."""
    if store.dialect == "postgresql":
        release(store.engine, owner)


@dataclass
class Held:
    """What :func:`ownership` gave: the work, and the leases that stand for it."""

    store: Store
    owner: str
    work: Assignment
    #: the lease names held (presence shard included); empty under the run lock
    shards: list[str]
    ttl: timedelta
    clock: Clock | None = None
    #: the shards found lost to another worker by the last renewal
    lost: list[str] = field(default_factory=list)

    def renew(self) -> list[str]:
        """Extend every lease held by the ttl from now; returns (and logs) those lost to
        another worker. Nothing to do under the run lock."""
        if not self.shards:
            return []
        held = renew(self.store.engine, self.owner, self.shards, self.ttl, now=_at(self.clock))
        self.lost = sorted(set(self.shards) - set(held))
        if self.lost:
            log.warning("leases lost to another worker: %s", ", ".join(self.lost))
        return self.lost

    def still_mine(self) -> None:
        """Renew, and raise :class:`LockHeld` if any lease was lost: call before writing
        what needs every shard held (``reconcile --apply``)."""
        if self.renew():
            kind = self.owner.split("@", 1)[0]
            raise LockHeld(
                f"{kind} lost its shard leases while reading (it took longer than "
                "[serve] lease_seconds); raise lease_seconds and run it again"
            )


@contextmanager
def _kept_alive(held: Held, every: float) -> Iterator[None]:
    """Renew ``held`` every ``every`` seconds while the ``with`` body runs, so a cycle
    longer than the lease keeps its shards; a worker that dies stops renewing and its
    shards free up as before."""
    if not held.shards:
        yield
        return
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every):
            try:
                held.renew()
            except Exception as exc:  # the next beat tries again; the cycle goes on
                log.warning("could not renew the shard leases of %s: %s", held.owner, exc)

    thread = threading.Thread(target=beat, name=f"lease-renewal {held.owner}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def ownership(
    store: Store,
    config: Config,
    owner: str,
    *,
    whole: bool = False,
    keep: bool = False,
    clock: Clock | None = None,
    renew_every: float | None = None,
) -> Iterator[Held]:
    """Own what this worker may work on for the ``with`` body, or raise :class:`LockHeld`.

    SQLite: the run lock, and with it every shard. PostgreSQL: with ``whole``, every shard
    or nothing (``reconcile --apply``); else this worker's fair share (:func:`lease`),
    :class:`AllLeased` when that is nothing. The leases are renewed every ``renew_every``
    seconds (a third of ``[serve] lease_seconds``) while the body runs, and given back when
    it ends, unless ``keep`` (``serve``, which leases again next cycle and gives back with
    :func:`give_back` when it stops). ``clock`` stands in for the database's (tests).
    """
    ttl = lease_ttl(config)
    if store.dialect != "postgresql":
        with run_lock(store.engine, owner):
            yield Held(store, owner, everything(), [], ttl, clock)
        return
    every = ttl.total_seconds() / 3 if renew_every is None else renew_every
    try:
        held = (
            _whole(store, config, owner, ttl, clock)
            if whole
            else _share(store, config, owner, ttl, clock)
        )
        with _kept_alive(held, every):
            yield held
    finally:
        if whole or not keep:
            give_back(store, owner)


def _share(store: Store, config: Config, owner: str, ttl: timedelta, clock: Clock | None) -> Held:
    work = lease(store, config, owner, ttl, clock=clock)
    if work.empty:
        raise AllLeased(
            "other workers hold every shard of this state store (see `jira-crm-sync "
            "status`); wait for them, or stop them, and run again"
        )
    return Held(store, owner, work, [WORKER_PREFIX + owner, *work.shards()], ttl, clock)


def _whole(store: Store, config: Config, owner: str, ttl: timedelta, clock: Clock | None) -> Held:
    shards = all_shards(config)
    held = lease_shards(store.engine, owner, shards, ttl, now=_at(clock))
    if set(held) != set(shards):
        raise LockHeld(
            "other workers hold shards of this state store (see `jira-crm-sync status`); "
            "stop the serve workers or wait for their cycle, then run reconcile --apply again"
        )
    return Held(store, owner, everything(), shards, ttl, clock)


def one_cycle(config: Config, store: Store, options: CycleOptions) -> CycleResult:
    """One cycle for `run` over what this worker owns (:class:`LockHeld` when another run
    or worker has the store). A dry run writes nothing, so it needs no lock or lease."""
    # The engine imports this module (Assignment), so it is imported when a cycle runs.
    from sync.cycle.engine import Engine
    from sync.remote import build_remotes

    owner = worker_name("run")
    engine = Engine(config, store, build_remotes(config), worker=owner)
    if options.dry_run:
        return engine.run(options)
    with ownership(store, config, owner) as held:
        return engine.run(options, held.work)
