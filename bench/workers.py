"""``python -m bench --workers 1,2,4``: how one round of shard jobs scales with workers.

A world of ``--connections`` (Jira site, CRM org) pairs, each its own sandbox served over
HTTPS on loopback by this process with ``--latency-ms`` per call, all in one directory of
connection configs whose state lives in one PostgreSQL (``--postgres URL``, default
``$JIRA_CRM_SYNC_BENCH_POSTGRES_URL`` then ``$JIRA_CRM_SYNC_TEST_POSTGRES_URL``; each
worker count gets a fresh schema, removed afterwards). For each worker count N: fresh
sandboxes of the same seeds, N real ``jira-crm-sync --connections DIR serve`` processes,
and, once all N are registered with the queue, one tick per connection deferred at once
(the schedule itself is daily, so nothing else is deferred). The round ends when the
queue holds no job to do or doing. Reported: the round's wall time, the calls the
sandboxes answered, and the floor calls x latency / N (each worker makes one call at a
time), with wall / floor.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from procrastinate import App, SyncPsycopgConnector

from connectors.sandbox.config_file import write_sandbox_config
from connectors.sandbox.stack import Sandbox
from sync.jobs import QUEUE, TICK, TICK_PRIORITY, conninfo, queue_of

ENTRY = Path(sys.executable).parent / "jira-crm-sync"
ANCHOR = datetime(2026, 3, 2, tzinfo=UTC)


def postgres_url(given: str | None) -> str:
    """The PostgreSQL to bench on (ValueError saying how to give one)."""
    url = (
        given
        or os.environ.get("JIRA_CRM_SYNC_BENCH_POSTGRES_URL")
        or os.environ.get("JIRA_CRM_SYNC_TEST_POSTGRES_URL")
    )
    if not url:
        raise ValueError(
            "--workers needs a PostgreSQL: give --postgres postgresql+psycopg://... or set "
            "JIRA_CRM_SYNC_BENCH_POSTGRES_URL"
        )
    return url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _schema(base: str) -> Iterator[str]:
    """A fresh schema of ``base``'s database; the URL whose sessions live in it."""
    name = f"jcs_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            rows = conn.exec_driver_sql(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %(p)s", {"p": f"{name}%"}
            )
            for (schema,) in list(rows):
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _calls(boxes: list[Sandbox]) -> int:
    total = 0
    for box in boxes:
        for app in (box.jira_app, box.salesforce_app):
            snap = app.stats.snapshot()
            total += int(snap["reads"]) + int(snap["writes"])
    return total


def _queue_state(url: str) -> tuple[int, int]:
    """(workers registered, jobs to do or doing) on the queue."""
    with psycopg.connect(conninfo(url)) as conn:
        workers = conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
        busy = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE queue_name LIKE %s "
            "AND status IN ('todo', 'doing')",
            (f"{QUEUE}/%",),
        ).fetchone()
    return int(workers[0] if workers else 0), int(busy[0] if busy else 0)


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting for {what}")
        time.sleep(0.05)


def one_round(
    workers: int,
    connections: int,
    issues: int,
    latency_ms: int,
    seed: int,
    base_url: str,
    root: Path,
) -> dict[str, Any]:
    """Wall time and calls of one round of every connection's shard jobs on ``workers``."""
    directory = root / f"workers-{workers}"
    directory.mkdir(parents=True)
    with ExitStack() as stack, _schema(base_url) as url:
        boxes = []
        for n in range(connections):
            box = Sandbox(
                issues=issues,
                accounts=max(1, issues // 5),
                seed=seed + n,
                anchor=ANCHOR,
                latency_ms=latency_ms,
            )
            box.serve(directory / f"tls-{n}")
            stack.callback(box.stop)
            config = directory / f"c{n:02d}.toml"
            write_sandbox_config(box, config, state_url=url)
            text = config.read_text(encoding="utf-8").replace('every = "1m"', 'every = "1d"')
            config.write_text(text, encoding="utf-8")
            boxes.append(box)
        env = {
            k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
        }
        procs: list[subprocess.Popen[bytes]] = []
        for _ in range(workers):
            listen = f"127.0.0.1:{_free_port()}"
            log = (directory / f"worker-{len(procs)}.log").open("w", encoding="utf-8")
            stack.callback(log.close)
            procs.append(
                subprocess.Popen(
                    [str(ENTRY), "--connections", str(directory), "serve", "--listen", listen],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )

        def stop_all() -> None:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

        stack.callback(stop_all)

        def ready() -> bool:
            try:
                return _queue_state(url)[0] >= workers
            except psycopg.Error:
                return False  # the first worker has not made the queue's tables yet

        _wait(ready, 180, f"{workers} worker(s) to register with the queue")
        for box in boxes:
            box.jira_app.stats.reset()
            box.salesforce_app.stats.reset()
        app = App(connector=SyncPsycopgConnector(conninfo=conninfo(url)))
        started = time.perf_counter()
        with app.open():
            for n in range(connections):
                name = f"c{n:02d}"
                app.configure_task(TICK, queue=queue_of(name), priority=TICK_PRIORITY).defer(
                    timestamp=int(time.time()), connection=name
                )
        _wait(lambda: _queue_state(url)[1] == 0, 1800, "the round to finish")
        wall = time.perf_counter() - started
        calls = _calls(boxes)
    floor = calls * latency_ms / 1000 / workers
    return {
        "workers": workers,
        "connections": connections,
        "issues_per_connection": issues,
        "calls": calls,
        "wall_seconds": round(wall, 2),
        "floor_seconds": round(floor, 2),
        "wall_over_floor": round(wall / floor, 2) if floor else None,
    }


def run(
    worker_counts: list[int],
    connections: int,
    issues: int,
    latency_ms: int,
    seed: int,
    postgres: str | None,
    root: Path,
) -> dict[str, Any]:
    """Every worker count, one round each."""
    url = postgres_url(postgres)
    rounds = []
    for workers in worker_counts:
        print(f"bench: {workers} worker(s) ...", file=sys.stderr, flush=True)
        rounds.append(one_round(workers, connections, issues, latency_ms, seed, url, root))
    return {
        "bench": "jira-crm-sync workers",
        "latency_ms": latency_ms,
        "connections": connections,
        "issues_per_connection": issues,
        "figures": {
            "wall_seconds": "from deferring one tick per connection to an empty queue",
            "calls": "API calls the sandboxes answered during the round",
            "floor_seconds": "calls x latency / workers (each worker makes one call at a time)",
        },
        "rounds": rounds,
    }


def table(document: dict[str, Any]) -> str:
    """The rounds as a short table."""
    lines = [
        f"{document['connections']} connections x {document['issues_per_connection']} issues, "
        f"latency {document['latency_ms']} ms",
        "workers  calls  wall s  floor s  wall/floor",
    ]
    for r in document["rounds"]:
        lines.append(
            f"{r['workers']:>7}  {r['calls']:>5}  {r['wall_seconds']:>6}  "
            f"{r['floor_seconds']:>7}  {r['wall_over_floor']}"
        )
    return "\n".join(lines)
