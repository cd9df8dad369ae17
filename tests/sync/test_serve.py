"""`serve` as a process against the HTTPS sandbox: /healthz, /metrics, a clean SIGTERM;
and on PostgreSQL several procrastinate workers sharing the shard jobs, one killed, one
joining."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.sandbox.config_file import write_sandbox_config
from connectors.sandbox.faults import Fault
from connectors.sandbox.stack import Sandbox
from sync.connections import ensure_namespace, namespaced_url
from sync.store import Store, open_store, repo
from sync.store.locks import pg_lock_holders
from tests.sync.e2e import (
    FIRST_SIGHT,
    duplicate_comments,
    expected,
    labelled,
    remote_state,
    report_counts,
)

ENTRY = Path(sys.executable).parent / "jira-crm-sync"
ANCHOR = datetime(2026, 11, 21, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    }


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(issues=300, accounts=60, seed=3, anchor=ANCHOR)
    box.serve(tmp_path / "tls")
    yield box
    box.stop()


def _config(box: Sandbox, path: Path, state_url: str, port: int, extra: str = "") -> Path:
    write_sandbox_config(box, path, state_url=state_url)
    text = path.read_text(encoding="utf-8")
    text = text.replace('listen = "127.0.0.1:9465"', f'listen = "127.0.0.1:{port}"')
    text = text.replace('every = "1m"', 'every = "1s"')
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_serve_answers_healthz_and_metrics_and_stops_on_sigterm(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    port = _free_port()
    config = _config(sandbox, tmp_path / "c.toml", f"sqlite:///{tmp_path / 's.db'}", port)
    proc = subprocess.Popen(
        [str(ENTRY), "--config", str(config), "serve"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> dict[str, Any] | None:
            try:
                status, body = _get(f"{base}/healthz")
            except OSError:
                return None
            doc = json.loads(body)
            return doc if status == 200 and doc["last_cycle"] else None

        doc = _until(healthy, 60, "a first cycle reported by /healthz")
        assert doc["last_cycle"]["status"] == "ok"
        status, metrics = _get(f"{base}/metrics")
        text = metrics.decode()
        assert status == 200
        assert "jira_crm_sync_cycle_duration_seconds_count" in text
        assert 'jira_crm_sync_cycles_total{connection="default",status="ok"}' in text
        assert 'jira_crm_sync_api_budget_remaining{connection="default",side="salesforce"}' in text
        assert (
            'jira_crm_sync_records_written_total{connection="default",kind="salesforce_records"}'
            in text
        )
        assert _get(f"{base}/nope")[0] == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bad_schedule_is_a_config_error(sandbox: Sandbox, tmp_path: Path) -> None:
    config = _config(sandbox, tmp_path / "c.toml", f"sqlite:///{tmp_path / 's.db'}", _free_port())
    config.write_text(
        config.read_text(encoding="utf-8").replace('every = "1s"', 'every = "every now and then"'),
        encoding="utf-8",
    )
    result = subprocess.run(
        [str(ENTRY), "--config", str(config), "serve"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "neither an interval" in result.stderr


def test_serve_logs_each_cycle_at_info_and_a_failing_one_as_a_warning(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """What the shipped unit's journal gets (--log-format json, no -v): the start-up line
    and one JSON line per cycle, failures at WARNING; -q leaves only errors."""
    config = _config(sandbox, tmp_path / "c.toml", f"sqlite:///{tmp_path / 's.db'}", _free_port())
    # The first cycle's search answers a truncated page: that cycle fails (exit 3).
    sandbox.jira_app.faults.add(Fault(kind="truncated", count=1, endpoint="search/jql"))
    served = subprocess.run(
        [str(ENTRY), "--config", str(config), "--log-format", "json", "serve", "--cycles", "2"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert served.returncode == 0, served.stderr
    lines = [json.loads(line) for line in served.stderr.splitlines()]  # every line is JSON
    assert lines[0]["level"] == "info"
    assert lines[0]["message"].startswith("serving /healthz and /metrics on 127.0.0.1:")
    cycles = [line for line in lines if "cycle" in line]
    assert [(c["level"], c["cycle"]["status"], c["cycle"]["exit_code"]) for c in cycles] == [
        ("warning", "failed", 3),
        ("info", "ok", 0),
    ]
    failed, ok = (c["cycle"] for c in cycles)
    assert "search issues" in failed["message"] and failed["message"] in cycles[0]["message"]
    assert (failed["failed_stage"], ok["failed_stage"]) == ("pull", None)
    assert cycles[0]["message"].startswith(f"cycle {failed['run_id']}: failed in pull (exit 3)")
    assert ok["pulled"]["jira_issues"] == len(sandbox.jira.issues)
    assert ok["written"]["salesforce_records"] > 0 and ok["calls"]["jira"] > 0
    assert cycles[1]["message"].startswith(f"cycle {ok['run_id']}: ok (exit 0) in ")

    quiet = subprocess.run(
        [str(ENTRY), "--config", str(config), "-q", "serve", "--cycles", "1"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (quiet.returncode, quiet.stderr) == (0, "")


def _holders(store: Store) -> list[str]:
    """The sessions holding the store's lock: the serve jobs in flight, by worker name."""
    with store.read() as conn:
        return [h.application_name or "" for h in pg_lock_holders(conn)]


def _serve(config: Path) -> subprocess.Popen[str]:
    """A `serve` worker whose log goes to ``<config>.log`` (read while it runs)."""
    with config.with_suffix(".log").open("w", encoding="utf-8") as log:
        return subprocess.Popen(
            [str(ENTRY), "--config", str(config), "serve"],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )


def _logs(directory: Path) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in sorted(directory.glob("w*.log")))


def _worker_config(box: Sandbox, path: Path, url: str) -> Path:
    config = _config(box, path, url, _free_port())
    text = config.read_text(encoding="utf-8")
    text = text.replace('every = "1s"', 'every = "2s"').replace(
        "lease_seconds = 300", "lease_seconds = 3"
    )
    config.write_text(text.replace(*FIRST_SIGHT), encoding="utf-8")
    return config


@pytest.mark.postgres
def test_workers_share_the_shard_jobs_one_killed_mid_job_one_joining(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """Several `serve` workers on one PostgreSQL store run its shard cycles as procrastinate
    jobs: one is SIGKILLed while a job is in flight (its job is put back and run by another
    within one schedule period), one joins mid-run and takes jobs; the end state is what
    SPEC section 6 computes, with no report record and no comment twice; SIGTERM in the
    middle of a job stops a worker cleanly."""
    box = Sandbox(issues=240, accounts=40, seed=5, anchor=ANCHOR, latency_ms=4)
    box.serve(tmp_path / "tls")
    configs = [_worker_config(box, tmp_path / f"w{i}.toml", pg_schema_url) for i in range(3)]
    open_store(pg_schema_url).close()  # migrate once, before the workers race for it
    store = open_store(pg_schema_url)
    workers = [_serve(configs[0]), _serve(configs[1])]
    try:
        victim = workers[0]

        def in_a_cycle() -> bool:
            # Holding the store's lock, and its cycle recorded as running (a job holds the
            # lock a moment before its cycle starts: imports, the connectors).
            if not any(h.endswith(f":{victim.pid}") for h in _holders(store)):
                return False
            with store.read() as conn:
                return any(
                    r.worker.endswith(f":{victim.pid}") and r.status == "running"
                    for r in repo.last_runs(conn, 50)
                )

        _until(in_a_cycle, 60, "the first worker to be in the middle of a shard job")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        joined = _serve(configs[2])
        workers.append(joined)
        want = expected(box, datetime.now(UTC).date())

        def converged() -> bool:
            if "of a worker gone silent for 3s is" not in _logs(tmp_path):
                return False  # the killed worker's job: put back (or dropped) by a tick
            with store.read() as conn:
                runs = {(r.worker, r.status) for r in repo.last_runs(conn, 200)}
                pending = repo.counts(conn)
            joined_ran = any(w.endswith(f":{joined.pid}") and s == "ok" for w, s in runs)
            queued = sum(pending.get(state, 0) for state in ("pending", "inflight"))
            return (
                joined_ran
                and queued == 0
                and report_counts(box) == want.reports
                and labelled(box) == want.labelled
            )

        try:
            _until(converged, 90, "the workers to bring both sides in step")
        except AssertionError:
            print(_logs(tmp_path)[-8000:])
            raise
        # SIGTERM while a job is in flight: the worker finishes it and exits 0, its cycle
        # recorded as ended and no write left in flight.
        stopped = workers[1]
        _until(
            lambda: any(h.endswith(f":{stopped.pid}") for h in _holders(store)),
            60,
            "the second worker to be in the middle of a shard job",
        )
        stopped.send_signal(signal.SIGTERM)
        assert stopped.wait(timeout=60) == 0, _logs(tmp_path)[-3000:]
        with store.read() as conn:
            mine = [r for r in repo.last_runs(conn, 500) if r.worker.endswith(f":{stopped.pid}")]
            assert mine and all(r.status != "running" for r in mine)
            assert repo.counts(conn)["inflight"] == 0
        joined.send_signal(signal.SIGTERM)
        assert joined.wait(timeout=60) == 0, _logs(tmp_path)[-3000:]
        state = remote_state(box)
        assert state.report_records == len(state.reports) == len(want.reports)
        assert duplicate_comments(box) == {}
        with store.read() as conn:
            runs = repo.last_runs(conn, 200)
        killed = [r for r in runs if r.worker.endswith(f":{victim.pid}")]
        assert killed and killed[0].status == "interrupted"
        assert {r.status for r in runs if r is not killed[0]} <= {"ok", "interrupted"}
        assert _holders(store) == []
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        store.close()
        box.stop()


@pytest.mark.postgres
def test_two_workers_serve_a_directory_of_connections_and_skip_a_broken_one(
    tmp_path: Path, pg_schema_url: str
) -> None:
    """`serve --connections DIR`: two (Jira site, CRM org) pairs, each its own sandbox and
    its own schema in the one PostgreSQL, both brought in step by two workers sharing
    their shard jobs (no report or comment twice); a config that does not load is
    reported (log, /healthz, /metrics) and skipped; `status` and `run` take
    `--connection` and see that connection's state alone."""
    boxes = {
        "alpha": Sandbox(issues=120, accounts=20, seed=7, anchor=ANCHOR),
        "beta": Sandbox(issues=90, accounts=16, seed=8, anchor=ANCHOR),
    }
    directory = tmp_path / "connections"
    directory.mkdir()
    for name, box in boxes.items():
        box.serve(tmp_path / f"tls-{name}")
        _worker_config(box, directory / f"{name}.toml", pg_schema_url)
    # The worker's [serve] section is the first connection's.
    port = int(re.search(r'listen = "127.0.0.1:(\d+)"', (directory / "alpha.toml").read_text())[1])
    (directory / "broken.toml").write_text("[jira]\nurl = 42\n", encoding="utf-8")
    schema = pg_schema_url.rsplit("%3D", 1)[1]
    proc = subprocess.Popen(
        [str(ENTRY), "--connections", str(directory), "serve"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    other_port = _free_port()
    other = subprocess.Popen(  # a second worker of the same directory, on its own port
        [
            *(str(ENTRY), "--connections", str(directory), "serve"),
            *("--listen", f"127.0.0.1:{other_port}"),
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    urls = {name: namespaced_url(pg_schema_url, name) for name in boxes}
    for url in urls.values():
        ensure_namespace(url)  # as the worker does; the test reads them as it runs
    stores = {name: open_store(url) for name, url in urls.items()}
    try:
        wants = {n: expected(b, datetime.now(UTC).date()) for n, b in boxes.items()}

        def queued(name: str) -> int:
            with stores[name].read() as conn:
                counts = repo.counts(conn)
            return counts["pending"] + counts["inflight"]

        def converged() -> bool:
            return all(
                report_counts(box) == wants[name].reports
                and labelled(box) == wants[name].labelled
                and queued(name) == 0
                for name, box in boxes.items()
            )

        _until(converged, 90, "both connections to be in step")
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        doc = json.loads(body)
        assert status == 200 and set(doc["connections"]) == {"alpha", "beta"}
        assert "broken" in doc["broken_connections"]
        metrics = _get(f"http://127.0.0.1:{port}/metrics")[1].decode()
        assert 'jira_crm_sync_connection_broken{connection="broken"} 1.0' in metrics
        # Each worker counts the jobs it ran: between them, every shard's.
        metrics += _get(f"http://127.0.0.1:{other_port}/metrics")[1].decode()
        for name in boxes:
            assert (
                f'jira_crm_sync_jobs_total{{connection="{name}",outcome="ok",shard="crm"}}'
                in metrics
            )
            assert (
                f'jira_crm_sync_api_budget_remaining{{connection="{name}",side="jira"}}' in metrics
            )
        proc.send_signal(signal.SIGTERM)
        other.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-3000:]
        assert other.wait(timeout=60) == 0
        assert "connection broken is skipped: " in err and "broken.toml" in err

        # Each connection's state is its own: its runs, its API calls.
        for name in boxes:
            shown = subprocess.run(
                [
                    str(ENTRY),
                    "status",
                    "--connections",
                    str(directory),
                    "--json",
                    "--connection",
                    name,
                ],
                env=_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert shown.returncode == 0, shown.stderr
            doc = json.loads(shown.stdout)
            with stores[name].read() as conn:
                runs = [r.id for r in repo.last_runs(conn, len(doc["runs"]))]
                used = repo.calls_today(conn, "jira", datetime.now(UTC).date())
            assert [r["id"] for r in doc["runs"]] == runs
            assert doc["budget"]["jira"]["used"] == used > 0
        again = subprocess.run(
            [str(ENTRY), "--connections", str(directory), "run", "--connection", "beta", "--json"],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["written"] == {}
        assert all(duplicate_comments(box) == {} for box in boxes.values())
        unknown = subprocess.run(
            [str(ENTRY), "--connections", str(directory), "run", "--connection", "gamma"],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert unknown.returncode == 2 and "no connection 'gamma'" in unknown.stderr
    finally:
        for worker in (proc, other):
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        for store in stores.values():
            store.close()
        for box in boxes.values():
            box.stop()
        admin = sa.create_engine(pg_schema_url, poolclass=sa.pool.NullPool)
        with admin.begin() as conn:
            for name in boxes:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}_{name}" CASCADE')
        admin.dispose()
