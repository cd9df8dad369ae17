"""`serve`: cycles on ``[schedule]`` until SIGTERM, with /healthz and Prometheus /metrics.

SIGTERM (or SIGINT) sets a flag the engine checks between writes: the write in flight
finishes and is recorded, the rest stays queued for the next start, and the process
exits 0.

- SQLite (one machine): one cycle over every shard each ``[schedule] every``, under the
  run lock (:func:`sync.cycle.ownership.ownership`).
- PostgreSQL: a procrastinate worker (:mod:`sync.jobs`): each shard's cycle is a job,
  deferred on the schedule, run by whichever worker is free; any number of `serve`
  processes on any number of machines share the work, and a dead one's job is run
  elsewhere.

Metrics carry a ``connection`` label: one worker may serve several connections
(``serve --connections DIR``).
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sync.config import Config, parse_listen
from sync.cycle.engine import CycleOptions, CycleResult, Engine
from sync.cycle.ownership import ownership, worker_name
from sync.remote import build_remotes
from sync.schedule import Schedule
from sync.store import LockHeld, Store, repo
from sync.store.db import display_url

if TYPE_CHECKING:
    from sync.jobs import Connection

log = logging.getLogger(__name__)


class ListenError(Exception):
    """[serve] listen cannot be bound."""


class Metrics:
    """The Prometheus metrics `serve` exposes, in a registry of its own, each labelled with
    the connection it is about."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        c = ["connection"]
        self.duration = Histogram(
            "jira_crm_sync_cycle_duration_seconds", "Duration of sync cycles.", c, registry=r
        )
        self.cycles = Counter(
            "jira_crm_sync_cycles", "Cycles by outcome.", [*c, "status"], registry=r
        )
        self.jobs = Counter(
            "jira_crm_sync_jobs",
            "Shard jobs this worker ran, by shard and outcome (skipped: the store was locked).",
            [*c, "shard", "outcome"],
            registry=r,
        )
        self.queued = Gauge(
            "jira_crm_sync_jobs_queued",
            "Jobs on the queue by task and state (PostgreSQL), as of the last job.",
            [*c, "task", "state"],
            registry=r,
        )
        self.lag = Gauge(
            "jira_crm_sync_schedule_lag_seconds",
            "How long after its scheduled tick the last shard job started.",
            c,
            registry=r,
        )
        self.pulled = Counter(
            "jira_crm_sync_records_pulled", "Records pulled.", [*c, "kind"], registry=r
        )
        self.written = Counter(
            "jira_crm_sync_records_written", "Writes made.", [*c, "kind"], registry=r
        )
        self.calls = Counter("jira_crm_sync_api_calls", "API calls made.", [*c, "side"], registry=r)
        self.budget = Gauge(
            "jira_crm_sync_api_budget_remaining",
            "Calls left in the daily API budget: not made nor reserved by a running cycle "
            "(counted in the state store, all workers).",
            [*c, "side"],
            registry=r,
        )
        self.parked = Gauge(
            "jira_crm_sync_parked_writes", "Writes parked after a rejection.", c, registry=r
        )
        self.last = Gauge(
            "jira_crm_sync_last_cycle_timestamp_seconds",
            "When the last cycle finished (Unix time).",
            c,
            registry=r,
        )
        self.broken = Gauge(
            "jira_crm_sync_connection_broken",
            "1 for a connection whose config could not be loaded (skipped).",
            c,
            registry=r,
        )

    def observe(
        self,
        result: CycleResult,
        seconds: float,
        store: Store,
        config: Config,
        connection: str = "default",
    ) -> None:
        """Count one finished cycle."""
        self.duration.labels(connection).observe(seconds)
        self.cycles.labels(connection, result.status).inc()
        for kind, n in result.pulled.items():
            self.pulled.labels(connection, kind).inc(n)
        for kind, n in result.written.items():
            self.written.labels(connection, kind).inc(n)
        for side, calls in result.calls.items():
            self.calls.labels(connection, side).inc(int(calls.get("total", 0)))
        today = datetime.now(UTC).date()
        with store.read() as conn:
            counts = repo.counts(conn)
            crm = config.crm.side
            # Made, and reserved by cycles still running (other jobs, other workers).
            used = {
                side: repo.calls_today(conn, side, today) + repo.reserved_today(conn, side, today)
                for side in ("jira", crm)
            }
        self.parked.labels(connection).set(counts.get("parked", 0) + counts.get("exhausted", 0))
        limits = config.limits
        self.budget.labels(connection, "jira").set(max(0, limits.jira_calls_per_day - used["jira"]))
        self.budget.labels(connection, crm).set(max(0, limits.crm_calls_per_day - used[crm]))
        self.last.labels(connection).set(time.time())


class Health:
    """What /healthz reports: alive, and how the last cycle of each connection went."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: dict[str, Any] = {}
        self.connections: dict[str, dict[str, Any]] = {}
        self.broken: dict[str, str] = {}

    def update(self, result: CycleResult, connection: str = "default") -> None:
        """Remember the last cycle (of ``connection``)."""
        with self.lock:
            self.last = {
                "status": result.status,
                "exit_code": int(result.exit_code),
                "finished_at": datetime.now(UTC).isoformat(),
                "message": result.message,
            }
            self.connections[connection] = dict(self.last)

    def document(self) -> tuple[int, dict[str, Any]]:
        """HTTP status and body: 503 while the last cycle could not reach a remote or broke
        (with several connections: while every one's last cycle did)."""
        with self.lock:
            last = dict(self.last)
            each = {name: dict(doc) for name, doc in self.connections.items()}
            broken = dict(self.broken)
        if len(each) > 1:
            failing = all(doc.get("exit_code") in (3, 5) for doc in each.values())
        else:
            failing = last.get("exit_code") in (3, 5)
        doc: dict[str, Any] = {
            "status": "failing" if failing else "ok",
            "last_cycle": last or None,
            "connections": each,
        }
        if broken:
            doc["broken_connections"] = broken
        return (503 if failing else 200), doc


def http_app(metrics: Metrics, health: Health) -> Callable[..., Iterable[bytes]]:
    """The WSGI app serving /healthz and /metrics."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest(metrics.registry)
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path == "/healthz":
            status, doc = health.document()
            reason = "OK" if status == 200 else "Service Unavailable"
            start_response(f"{status} {reason}", [("Content-Type", "application/json")])
            return [json.dumps(doc).encode("utf-8")]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /healthz or /metrics\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, self.path, code)


#: What a bind failure means, in words that lead to the fix.
_BIND_ERRORS = {
    errno.EADDRINUSE: "address in use: another process holds that port",
    errno.EADDRNOTAVAIL: "no such address on this machine",
    errno.EACCES: "permission denied: ports below 1024 need privileges",
}


def start_http(listen: str, metrics: Metrics, health: Health) -> BaseWSGIServer:
    """Serve /healthz and /metrics on ``host:port`` in a daemon thread.

    The socket is bound here and handed to werkzeug: werkzeug's own bind prints its
    advice and calls ``sys.exit(1)`` when the port is taken, which is no config error.
    """
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise ListenError(f"[serve] listen {exc}") from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        why = _BIND_ERRORS.get(exc.errno or 0) or exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {listen} ({why}); change [serve] listen") from None
    try:
        server = make_server(
            host,
            port,
            http_app(metrics, health),
            threaded=True,
            request_handler=_QuietHandler,
            fd=sock.fileno(),
        )
    finally:
        sock.close()  # werkzeug holds its own duplicate of the socket
    threading.Thread(target=server.serve_forever, name="serve-http", daemon=True).start()
    return server


def serve_forever(
    config: Config,
    store: Store,
    schedule: Schedule,
    stop: threading.Event,
    *,
    max_cycles: int | None = None,
    on_ready: Callable[[BaseWSGIServer], None] | None = None,
) -> None:
    """Run cycles on ``schedule`` until ``stop`` is set (or ``max_cycles`` ran): a loop on
    SQLite, a procrastinate worker on PostgreSQL (:func:`serve_jobs`)."""
    if store.dialect == "postgresql":
        from sync.jobs import Connection

        connection = Connection("default", config, store, schedule)
        serve_jobs(
            [connection],
            {},
            store.engine.url,
            config,
            stop,
            max_jobs=max_cycles,
            on_ready=on_ready,
        )
        return
    metrics, health = Metrics(), Health()
    server = start_http(config.serve.listen, metrics, health)
    owner = worker_name("serve")
    remotes = build_remotes(config)
    engine = Engine(config, store, remotes, worker=owner, should_stop=stop.is_set)
    if on_ready is not None:
        on_ready(server)
    cycles = 0
    try:
        while not stop.is_set():
            started = time.monotonic()
            result = _cycle(engine, store, config, owner)
            if result is not None:
                seconds = time.monotonic() - started
                metrics.observe(result, seconds, store, config)
                health.update(result)
                log_cycle(result, seconds)
            cycles += 1
            if max_cycles is not None and cycles >= max_cycles:
                break
            now = datetime.now(UTC)
            wait = (schedule.next_after(now) - now).total_seconds()
            stop.wait(max(0.0, wait))
    finally:
        server.shutdown()
        server.server_close()


def serve_jobs(
    connections: Sequence[Connection],
    broken: dict[str, str],
    queue_url: str | sa.URL,
    serve_config: Config,
    stop: threading.Event,
    *,
    max_jobs: int | None = None,
    on_ready: Callable[[BaseWSGIServer], None] | None = None,
) -> None:
    """Run a procrastinate worker over ``connections`` (PostgreSQL) until ``stop`` is set,
    with /healthz and /metrics on ``serve_config``'s ``[serve] listen``; ``broken`` names
    the connections skipped, each with why."""
    from sync.jobs import Deployment, job_counts

    metrics, health = Metrics(), Health()
    health.broken = dict(broken)
    for name in broken:
        metrics.broken.labels(name).set(1)
    for c in connections:
        metrics.broken.labels(c.name).set(0)

    def observe(
        c: Connection, shard: str, outcome: str, result: CycleResult | None, seconds: float
    ) -> None:
        metrics.jobs.labels(c.name, shard, outcome).inc()
        if result is None:
            return
        metrics.observe(result, seconds, c.store, c.config, c.name)
        health.update(result, c.name)
        log_cycle(result, seconds, c.name, shard)
        try:
            counts = job_counts(queue_url)
        except Exception as exc:  # a metric, never a reason to fail the job
            log.debug("could not count the queued jobs: %s", exc)
            return
        for (name, task, state), n in counts.items():
            if name in deployment.connections:
                metrics.queued.labels(name, task.rsplit(".", 1)[-1], state).set(n)

    deployment = Deployment(
        connections,
        queue_url,
        stop,
        lease_seconds=serve_config.serve.lease_seconds,
        observe=observe,
        on_start=lambda c, lag: metrics.lag.labels(c.name).set(lag),
    )
    server = start_http(serve_config.serve.listen, metrics, health)
    if on_ready is not None:
        on_ready(server)
    try:
        deployment.run_worker(max_jobs=max_jobs)
    finally:
        server.shutdown()
        server.server_close()


class NoConnections(Exception):
    """``serve --connections DIR`` found no connection it can serve (exit 2)."""


@dataclass
class Opened:
    """The connections of a directory ``serve`` can serve, and the ones it skips."""

    connections: list[Connection]
    broken: dict[str, str]
    queue_url: str
    config: Config  # whose [serve] section the worker uses: the first connection's


def open_connections(directory: Path) -> Opened:
    """Load ``directory`` (sync.connections) for a procrastinate worker: every connection
    on PostgreSQL, in one database (the queue lives in its ``[state] url`` as written),
    with a schedule a cron can express and a store that opens. The others are reported
    (logged as errors) and skipped; :class:`NoConnections` when none is left."""
    from sync.connections import ensure_namespace, load_directory
    from sync.jobs import Connection, cron_of
    from sync.store import StoreError, open_store

    found = load_directory(directory)
    broken = {b.name: b.reason for b in found.broken}
    connections: list[Connection] = []
    queue: str | None = None
    first: Config | None = None
    for loaded in found.connections:
        url = str(loaded.config.state.url)
        try:
            if loaded.base_url is None or sa.make_url(url).get_backend_name() != "postgresql":
                raise ValueError(
                    "serve --connections runs on PostgreSQL: set its [state] url to the "
                    "deployment's database (postgresql+psycopg://...)"
                )
            if queue is not None and loaded.base_url != queue:
                raise ValueError(
                    f"its [state] url names another database or schema than the first "
                    f"connection's ({display_url(queue)}): give every connection the same"
                )
            schedule = Schedule.parse(loaded.config.schedule.every)
            cron_of(schedule)
            ensure_namespace(url)
            store = open_store(url)
        except (ValueError, StoreError) as exc:
            broken[loaded.name] = str(exc)
            continue
        queue = queue or loaded.base_url
        first = first or loaded.config
        connections.append(Connection(loaded.name, loaded.config, store, schedule))
    for name, reason in sorted(broken.items()):
        log.error("connection %s is skipped: %s", name, reason)
    if not connections or queue is None or first is None:
        raise NoConnections(
            f"--connections {directory}: no connection can be served "
            f"({len(broken)} skipped, each logged above with why); fix them and start again"
        )
    return Opened(connections, broken, queue, first)


#: The log level of a cycle by its exit code: rejected records and unreachable remotes
#: are warnings (the next cycles retry), config trouble and bugs errors.
_LEVELS = {0: logging.INFO, 1: logging.WARNING, 3: logging.WARNING}


def log_cycle(
    result: CycleResult, seconds: float, connection: str | None = None, shard: str | None = None
) -> None:
    """One line per cycle: what it did in words, and the same as a ``cycle`` object that
    ``--log-format json`` writes with it (so the journal can be queried by field); a shard
    job's line names its connection and shard."""
    calls = {side: int(c.get("total", 0)) for side, c in result.calls.items()}
    document: dict[str, Any] = {
        "run_id": result.run_id,
        "status": result.status,
        "exit_code": int(result.exit_code),
        "seconds": round(seconds, 3),
        "pulled": result.pulled,
        "written": result.written,
        "failed": len(result.failed),
        "calls": calls,
        "message": result.message,
        "failed_stage": result.failed_stage,
    }

    def join(counts: dict[str, int]) -> str:
        return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing"

    where = ""
    if connection is not None:
        document["connection"], document["shard"] = connection, shard
        where = f" [{connection}/{shard}]"
    stage = f" in {result.failed_stage}" if result.failed_stage else ""
    text = (
        f"cycle {result.run_id}{where}: {result.status}{stage} (exit {int(result.exit_code)})"
        f" in {seconds:.1f}s; pulled {join(result.pulled)}; wrote {join(result.written)}; "
        f"calls {join(calls)}"
    )
    if result.message:
        text += f"; {result.message}"
    level = _LEVELS.get(int(result.exit_code), logging.ERROR)
    log.log(level, "%s", text, extra={"cycle": document})


def _cycle(engine: Engine, store: Store, config: Config, owner: str) -> CycleResult | None:
    try:
        with ownership(store, config, owner) as held:
            return engine.run(CycleOptions(), held.work)
    except LockHeld as exc:
        log.warning("skipping this cycle: %s", exc)
    return None
