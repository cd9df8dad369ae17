"""`jira-crm-sync demo` as `make demo` runs it: the real entry point in a subprocess, with
this machine's ambient CA bundle set, exits 0 in time, names what it wrote to each side
(a small incremental after the changes), writes an HTML report, keeps the state when asked,
and leaves no process and no temporary file behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import certifi

from sync.config import load_config
from tests.sync.e2e import CLI, cli_env

#: `make demo` must finish in under two minutes on a clean clone, install included.
DEMO_TIMEOUT = 90


def _session_members(session: int) -> list[int]:
    """Pids of live processes in a session (the demo runs as a session leader)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session:  # state ppid pgrp session ...
            members.append(int(entry.name))
    return members


def test_demo_syncs_both_ways_writes_the_report_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    report = tmp_path / "out" / "report.html"
    kept = tmp_path / "kept"
    env = {**cli_env(), "TMPDIR": str(scratch), "REQUESTS_CA_BUNDLE": certifi.where()}
    with subprocess.Popen(
        [str(CLI), "demo", "--output", str(report), "--keep-state", str(kept)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        out, err = process.communicate(timeout=DEMO_TIMEOUT)
    assert process.returncode == 0, err
    assert "Traceback" not in err

    first, _, rest = out.partition("\n2. ")
    changes, _, later = rest.partition("\n3. ")
    upserted = re.search(r"Salesforce: (\d+) Jira_Project_Status__c record\(s\) upserted", first)
    updated = re.search(r"Jira: (\d+) issue\(s\) updated", first)
    assert upserted and int(upserted.group(1)) > 0, out
    assert updated and int(updated.group(1)) > 0, out
    resolved = re.search(r"Jira: (\S+) moved from .* to Done", changes)
    assert resolved, out
    assert "CSAT dropped" in changes and "escalated" in changes
    # The incremental sync writes what the changes call for: the resolved issue's label
    # comes off and its report is upserted; nothing like the first sync's volume.
    assert f"{resolved.group(1)}: -customer-at-risk" in later, later
    project = resolved.group(1).rsplit("-", 1)[0]
    assert re.search(rf"\n     {project} x .+: (Green|Amber|Red), ", later), later
    small = re.search(r"(\d+) record\(s\) written for these changes, against (\d+)", later)
    assert small and 1 <= int(small.group(1)) < int(small.group(2)) / 4, later

    assert f"HTML progress report: {report}" in out
    html = report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "</html>" in html.lower()

    assert _session_members(process.pid) == []  # no server, no child left running
    assert list(scratch.iterdir()) == []  # the sandbox's CA and the temporary state are gone

    # --keep-state: the state store and a config that opens it outlive the demo.
    status = subprocess.run(
        [str(CLI), "--config", str(kept / "jira-crm-sync.toml"), "status", "--json"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    runs = json.loads(status.stdout)["runs"]
    assert [(r["status"], r["exit_code"]) for r in runs] == [("ok", 0), ("ok", 0)]
    assert os.stat(kept / "jira-crm-sync.toml").st_mode & 0o077 == 0  # sandbox secrets


def test_demo_refuses_an_unwritable_report_path_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    done = subprocess.run(
        [str(CLI), "demo", "--output", str(blocker / "report.html")],
        cwd=tmp_path,
        env={**cli_env(), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--output" in lines[0] and "Traceback" not in done.stderr


def test_demo_against_a_hubspot_portal_reads_back_what_each_side_holds(tmp_path: Path) -> None:
    from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID
    from sync.demo import Demo, HubSpotSide

    lines: list[str] = []
    report = tmp_path / "report.html"
    demo = Demo(lines.append, report, tmp_path / "kept", issues=80, accounts=30, crm="hubspot")
    assert isinstance(demo.side, HubSpotSide)

    assert demo.run() == report

    out = "\n".join(lines)
    assert re.search(r"Sandbox Jira at \S+ and HubSpot at https://127\.0\.0\.1:\d+ ", out), out
    first, _, rest = out.partition("\n2. ")
    changes, _, later = rest.partition("\n3. ")
    upserted = re.search(r"HubSpot: (\d+) jira_project_status record\(s\) upserted", first)
    held = demo.side.hub.backend.records[CUSTOM_TYPE_ID]
    assert upserted and int(upserted.group(1)) == len(held) > 0, out
    assert re.search(r"Jira: (\d+) issue\(s\) updated", first), out
    assert "HubSpot: " in changes and "CSAT dropped to 2.4" in changes, changes
    assert "escalated" in changes, changes
    resolved = re.search(r"Jira: (\S+) moved from .* to Done", changes)
    assert resolved and f"{resolved.group(1)}: -customer-at-risk" in later, later
    assert report.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    kept = load_config(tmp_path / "kept" / "jira-crm-sync.toml")  # loads after the demo
    assert kept.crm.kind == "hubspot"
