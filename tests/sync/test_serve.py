"""`serve` as a process against the HTTPS sandbox: /healthz, /metrics, a clean SIGTERM;
and on PostgreSQL two workers that split the shards and take over from a dead one."""

from __future__ import annotations

import json
import os
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

from connectors.sandbox.config_file import write_sandbox_config
from connectors.sandbox.faults import Fault
from connectors.sandbox.stack import Sandbox
from sync.store import open_store
from sync.store.repo.leases import list_leases

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
        assert 'jira_crm_sync_cycles_total{status="ok"}' in text
        assert 'jira_crm_sync_api_budget_remaining{side="salesforce"}' in text
        assert 'jira_crm_sync_records_written_total{kind="salesforce_records"}' in text
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


def test_two_workers_split_the_shards_and_one_takes_over(
    sandbox: Sandbox, tmp_path: Path, pg_schema_url: str
) -> None:
    shards = {"crm", *(f"jira:{p.key}" for p in sandbox.world.projects)}
    configs = [
        _config(sandbox, tmp_path / f"w{i}.toml", pg_schema_url, _free_port(), extra="")
        for i in range(2)
    ]
    for config in configs:
        config.write_text(
            config.read_text(encoding="utf-8").replace("lease_seconds = 300", "lease_seconds = 4"),
            encoding="utf-8",
        )
    open_store(pg_schema_url).close()  # migrate once, before two workers race for it
    workers = [
        subprocess.Popen(
            [str(ENTRY), "--config", str(c), "serve"],
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    ]
    store = open_store(pg_schema_url)
    try:

        def owners() -> dict[str, str]:
            now = datetime.now(UTC)
            return {
                lease.shard: str(lease.owner)
                for lease in list_leases(store.engine)
                if lease.owner
                and lease.expires_at
                and lease.expires_at > now
                and not lease.shard.startswith("worker:")
            }

        def split() -> dict[str, str] | None:
            held = owners()
            return held if set(held) == shards and len(set(held.values())) == 2 else None

        try:
            held = _until(split, 60, "both workers to hold a share of the shards")
        except AssertionError:
            print("OWNERS", owners())
            for w in workers:
                w.kill()
                print("STDERR", w.pid, w.communicate()[1][-3000:])
            raise
        by_pid = {w.pid: {s for s, o in held.items() if o.endswith(f":{w.pid}")} for w in workers}
        assert all(by_pid.values()) and not set.intersection(*by_pid.values())
        assert set.union(*by_pid.values()) == shards

        victim, survivor = workers
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

        def taken_over() -> bool:
            held_now = owners()
            return set(held_now) == shards and all(
                o.endswith(f":{survivor.pid}") for o in held_now.values()
            )

        _until(taken_over, 60, "the survivor to take over the dead worker's shards")
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=30) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        store.close()
