"""`serve`'s task engine on PostgreSQL: shard cycles as procrastinate jobs.

Why procrastinate: the state store is PostgreSQL already, so it adds no broker to run or
back up (Celery would need Redis or RabbitMQ beside it); and it has, kept and tested by
others, what the hand-written shard leases did: per-key job locks (one shard runs on one
worker at a time), queueing locks (a periodic job does not pile up behind a slow one),
periodic tasks deferred once per deployment however many workers run, worker heartbeats
that find the job of a worker that died, and a worker shutdown that finishes the job in
hand.

The jobs, on a queue per connection (:func:`queue_of`: ``jira-crm-sync/<connection>``),
so a worker takes only jobs of the connections it serves (a worker started before a
connection was added leaves that one's jobs to the workers that know it):

- ``jira_crm_sync.tick`` (``timestamp``, ``connection``): a periodic task per connection,
  on the cron of its ``[schedule] every`` (:func:`cron_of`). procrastinate's periodic
  deferrer runs in every worker and defers a tick once (a unique row per task, periodic
  id and second), so any number of workers may start. A tick first puts back the jobs
  of workers silent for longer than ``[serve] lease_seconds`` (procrastinate's stalled
  jobs: their worker was killed or its machine stopped) and then defers one
  ``jira_crm_sync.shard`` job per shard of the connection, with ``lock`` and
  ``queueing_lock`` both ``<connection>/<shard>``: at most one waiting and one running.
- ``jira_crm_sync.shard`` (``connection``, ``shard``): one cycle over that shard
  (:class:`sync.cycle.engine.Engine` with the shard's
  :class:`~sync.cycle.ownership.Assignment`): ``crm`` pulls the CRM, ``jira:<KEY>``
  pulls that project, derives it and pushes its queued writes (a write belongs to its
  project's shard). The job holds the store's lock *shared*
  (:func:`sync.store.locks.shard_lock`): jobs of other shards run beside it, a ``run`` or
  ``reconcile --apply`` is refused meanwhile, and while one of those runs the job is
  skipped (the next tick defers it again).

A worker killed mid-job leaves its job ``doing``, and with it the shard's job lock: the
next tick after the worker's heartbeat is ``lease_seconds`` old puts it back, and any
worker runs it. The cycle it ran was recorded as running; the next cycle of the store
marks it interrupted (its worker has no session on the store's lock) and the outbox and
ledger make the writes converge, as after a killed `run`.

procrastinate's tables are made by procrastinate, not by our migrations
(:func:`ensure_schema`): they belong to the installed procrastinate version, which has
its own migrations, and they live in the deployment's queue schema, which is shared by
every connection's store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import sqlalchemy as sa
from procrastinate import App, PsycopgConnector, exceptions
from procrastinate import jobs as pjobs
from procrastinate.schema import SchemaManager

from sync.config import Config
from sync.cycle.engine import CycleOptions, CycleResult, Engine
from sync.cycle.ownership import all_shards, assignment_of, worker_name
from sync.remote import Remotes, build_remotes
from sync.schedule import Schedule, ScheduleError
from sync.store import LockHeld, Store, shard_lock
from sync.store.db import display_url

log = logging.getLogger(__name__)

QUEUE = "jira-crm-sync"
TICK = "jira_crm_sync.tick"
SHARD = "jira_crm_sync.shard"
#: Ticks go before shard jobs when a worker frees up: the schedule is kept, stalled jobs
#: are put back, however long the shard cycles take.
TICK_PRIORITY = 10

#: The first half of the advisory lock key that serialises applying procrastinate's
#: schema ("JCSQ"); the second is fixed.
_SCHEMA_LOCK = (0x4A435351, 1)


@dataclass
class Connection:
    """One (Jira site, CRM org) pair a worker syncs: its config, store and schedule."""

    name: str
    config: Config
    store: Store
    schedule: Schedule
    _remotes: Remotes | None = field(default=None, repr=False)

    @property
    def remotes(self) -> Remotes:
        """The connection's clients, built on first use (a job uses them, one at a time)."""
        if self._remotes is None:
            self._remotes = build_remotes(self.config)
        return self._remotes

    def shards(self) -> list[str]:
        """The shard keys of this connection's jobs."""
        return all_shards(self.config)

    def key(self, shard: str) -> str:
        """The job lock (and queueing lock) of one of its shards."""
        return f"{self.name}/{shard}"


#: What a shard job reports when it ends: the connection, the shard, the outcome ("ok",
#: "failed": a cycle that did not exit 0 or broke, "skipped": the store was locked), the
#: result (None unless a cycle ran to its end) and how long it took.
Observer = Callable[[Connection, str, str, CycleResult | None, float], None]
#: Told when a shard job starts: the connection, and how many seconds after its tick.
Starter = Callable[[Connection, float], None]


def queue_of(connection: str) -> str:
    """The queue of a connection's jobs."""
    return f"{QUEUE}/{connection}"


def cron_of(schedule: Schedule) -> str:
    """procrastinate's cron for ``[schedule] every``: a cron expression as it is; an
    interval as the cron that fires that often (seconds as a sixth field), which needs an
    interval that divides a minute, an hour or a day (ScheduleError with the fix)."""
    if schedule.interval is None:
        return schedule.text
    seconds = int(schedule.interval.total_seconds())
    if seconds < 60 and 60 % seconds == 0:
        return "* * * * *" if seconds == 60 else f"* * * * * */{seconds}"
    if seconds % 60 == 0 and seconds < 3600 and 60 % (seconds // 60) == 0:
        return f"*/{seconds // 60} * * * *"
    if seconds % 3600 == 0 and seconds < 86400 and 24 % (seconds // 3600) == 0:
        return f"0 */{seconds // 3600} * * *"
    if seconds == 86400:
        return "0 0 * * *"
    raise ScheduleError(
        f"[schedule] every = {schedule.text!r}: serve on PostgreSQL runs on a cron, so an "
        "interval must divide a minute, an hour or a day (like 30s, 5m, 2h, 1d); use one "
        'of those or a cron expression (like "*/15 * * * *")'
    )


def conninfo(url: str | sa.URL) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (driver name dropped,
    query options such as ``options=-csearch_path=...`` kept)."""
    parsed = sa.make_url(url)
    return str(parsed.set(drivername="postgresql").render_as_string(hide_password=False))


def ensure_schema(queue_url: str | sa.URL) -> bool:
    """Create procrastinate's tables in the queue schema unless they are there; True if
    this call made them. Serialised by an advisory lock, so workers starting together
    make them once."""
    with psycopg.connect(conninfo(queue_url), autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", _SCHEMA_LOCK)
        present = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if present is not None and present[0] is not None:
            return False
        conn.execute(SchemaManager.get_schema())
        conn.commit()
    log.info("created procrastinate's tables in %s", display_url(sa.make_url(queue_url)))
    return True


class Deployment:
    """The connections one worker serves, and the procrastinate app that runs their jobs."""

    def __init__(
        self,
        connections: Sequence[Connection],
        queue_url: str | sa.URL,
        stop: threading.Event,
        *,
        lease_seconds: float,
        observe: Observer | None = None,
        on_start: Starter | None = None,
        owner: str | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.connections = {c.name: c for c in connections}
        self.queue_url = queue_url
        self.stop = stop
        self.lease_seconds = lease_seconds
        self.observe = observe
        self.on_start = on_start
        self.owner = owner or worker_name("serve")
        self.poll_seconds = poll_seconds
        self.jobs_run = 0
        self.app = self._build_app()

    def _build_app(self) -> App:
        app = App(
            connector=PsycopgConnector(conninfo=conninfo(self.queue_url), min_size=1, max_size=4)
        )

        @app.task(name=TICK, queue=QUEUE, priority=TICK_PRIORITY)  # queue: set per deferral
        async def tick(timestamp: int, connection: str) -> None:
            await self._tick(connection, timestamp)

        @app.task(name=SHARD, queue=QUEUE)
        def shard(connection: str, shard: str, due: int | None = None) -> None:
            self.run_shard(connection, shard, due)

        for c in self.connections.values():
            app.periodic(
                cron=cron_of(c.schedule),
                periodic_id=c.name,
                task_kwargs={"connection": c.name},
                queueing_lock=f"tick:{c.name}",
                queue=queue_of(c.name),
            )(tick)
        self._shard_task = shard
        return app

    async def _tick(self, name: str, due: int) -> None:
        """Put back the jobs of dead workers, then defer the connection's shard jobs."""
        await self.retry_stalled(name)
        connection = self.connections.get(name)
        if connection is None:
            log.warning("tick for connection %r, which this worker does not serve", name)
            return
        for shard in connection.shards():
            key = connection.key(shard)
            try:
                await self._shard_task.configure(
                    lock=key, queueing_lock=key, queue=queue_of(name)
                ).defer_async(connection=name, shard=shard, due=due)
            except exceptions.AlreadyEnqueued:
                log.debug("%s is queued already", key)

    async def retry_stalled(self, connection: str) -> int:
        """Put back (as to do) the jobs of ``connection`` whose worker's heartbeat is older
        than ``lease_seconds``; returns how many were found. A job whose shard has another
        waiting already is marked failed instead (that one does the same work); either
        way the shard's job lock is free again."""
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(
            queue=queue_of(connection), seconds_since_heartbeat=self.lease_seconds
        )
        count = 0
        for job in stalled:
            try:
                await manager.retry_job(job)
                count += 1
                log.warning(
                    "job %s (%s) of a worker gone silent for %ss is queued again",
                    job.id,
                    job.call_string,
                    self.lease_seconds,
                )
            except exceptions.ConnectorException:  # its shard's next job waits already
                await manager.finish_job(job, status=pjobs.Status.FAILED, delete_job=False)
                count += 1
                log.warning(
                    "job %s (%s) of a worker gone silent for %ss is dropped: the same "
                    "shard's next job is queued and does its work",
                    job.id,
                    job.call_string,
                    self.lease_seconds,
                )
        return count

    def run_shard(self, name: str, shard: str, due: int | None = None) -> None:
        """One shard job: a cycle over ``shard`` of connection ``name``, under the store's
        shared lock (skipped while a ``run`` or ``reconcile --apply`` holds it); ``due``
        is the Unix time of the tick that deferred it."""
        connection = self.connections.get(name)
        if connection is None:
            log.warning("job for connection %r, which this worker does not serve", name)
            return
        if due is not None and self.on_start is not None:
            self.on_start(connection, max(0.0, time.time() - due))
        started = time.monotonic()
        result: CycleResult | None = None
        outcome = "failed"
        try:
            with shard_lock(connection.store.engine, self.owner):
                engine = Engine(
                    connection.config,
                    connection.store,
                    connection.remotes,
                    worker=self.owner,
                    should_stop=self.stop.is_set,
                )
                result = engine.run(CycleOptions(), assignment_of([shard]))
            outcome = "ok" if result.exit_code == 0 else "failed"
        except LockHeld as exc:
            outcome = "skipped"
            log.info("%s: skipped, %s", connection.key(shard), exc)
        except Exception:  # procrastinate records the job failed, with the traceback
            log.exception("%s: the shard job broke", connection.key(shard))
            raise
        finally:
            self.jobs_run += 1
            if self.observe is not None:
                self.observe(connection, shard, outcome, result, time.monotonic() - started)

    def run_worker(self, *, max_jobs: int | None = None) -> None:
        """Run this worker until ``stop`` is set (or ``max_jobs`` shard jobs ran): on stop,
        no new job is taken and the one in hand finishes (its cycle stops after the write
        in flight)."""
        ensure_schema(self.queue_url)
        asyncio.run(self._run(max_jobs))

    async def _run(self, max_jobs: int | None) -> None:
        heartbeat = max(0.5, self.lease_seconds / 3)
        async with self.app.open_async():
            worker = asyncio.create_task(
                self.app.run_worker_async(
                    queues=[queue_of(name) for name in self.connections],
                    name=self.owner,
                    concurrency=1,
                    install_signal_handlers=False,
                    delete_jobs="successful",
                    fetch_job_polling_interval=self.poll_seconds,
                    abort_job_polling_interval=max(self.poll_seconds, 1.0),
                    update_heartbeat_interval=heartbeat,
                    stalled_worker_timeout=self.lease_seconds,
                )
            )
            while not worker.done() and not self.stop.is_set():
                if max_jobs is not None and self.jobs_run >= max_jobs:
                    self.stop.set()
                    break
                await asyncio.sleep(0.1)
            if not worker.done():
                worker.cancel()  # procrastinate stops taking jobs and waits for the one in hand
            with contextlib.suppress(asyncio.CancelledError):
                await worker


def job_counts(queue_url: str | sa.URL) -> dict[tuple[str, str, str], int]:
    """Jobs on the queue by (connection, task, status): what /metrics shows as queued."""
    query = (
        "SELECT args->>'connection', task_name, status::text, count(*) FROM procrastinate_jobs "
        "WHERE queue_name LIKE %s GROUP BY 1, 2, 3"
    )
    with psycopg.connect(conninfo(queue_url)) as conn:
        rows: list[Any] = conn.execute(query, (f"{QUEUE}/%",)).fetchall()
    return {(str(r[0]), str(r[1]), str(r[2])): int(r[3]) for r in rows}
