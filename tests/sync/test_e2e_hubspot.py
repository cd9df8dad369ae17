"""The real `jira-crm-sync run` with ``[crm] kind = "hubspot"``: the HTTPS Jira sandbox and
the HTTPS HubSpot sandbox portal of the same world. A first run pulls companies and
tickets, links Jira projects to the companies naming them, upserts one progress report
per (company, project) to the portal's custom object (associated to its company) and
labels the open work of at-risk customers in Jira; a second run writes nothing, and
`check --online` before and `reconcile` after find nothing wrong; `status` and
`report` read the store it left.

What the reports and labels must be is computed here from the two sandboxes' records, not
by mappings/.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.config_file import write_hubspot_config
from connectors.sandbox.hubspot.schema import CLOSED_STAGE, CUSTOM_TYPE_ID, STANDARD_TYPES
from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.config import load_config
from tests.sync.e2e import ANCHOR, CATEGORY, CLI, LABEL, cli_env, make_sandbox

COMPANIES = STANDARD_TYPES["companies"]
TICKETS = STANDARD_TYPES["tickets"]


@pytest.fixture
def sites(
    store_url: str, tmp_path: Path, tls: Tls
) -> Iterator[tuple[Sandbox, HubSpotSandbox, Path]]:
    box = make_sandbox(80, 12, seed=2, anchor=ANCHOR)
    box.serve(tmp_path, tls=tls)
    hub = HubSpotSandbox(box.world)
    hub.serve(tmp_path, tls=tls)
    path = tmp_path / "jira-crm-sync.toml"
    write_hubspot_config(box, hub, path, store_url)
    try:
        yield box, hub, path
    finally:
        hub.stop()
        box.stop()


def run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "--config", str(path), *(args or ("run",))],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _at_risk(hub: HubSpotSandbox, company: str) -> bool:
    """SPEC's at-risk rule with the config's numbers: CSAT below 3.5 on 5, or an open
    escalated (HIGH or URGENT) ticket."""
    backend = hub.backend
    csat = backend.records[COMPANIES][company].properties.get("csat_score")
    if csat not in (None, "") and float(str(csat)) < 3.5:
        return True
    for ticket in backend.records[TICKETS].values():
        props = ticket.properties
        if ticket.archived_ms is not None or props.get("hs_pipeline_stage") == CLOSED_STAGE:
            continue
        if props.get("hs_ticket_priority") in ("HIGH", "URGENT") and company in backend.associated(
            TICKETS, ticket.id, COMPANIES
        ):
            return True
    return False


def test_run_against_hubspot_reports_flags_and_then_writes_nothing(
    sites: tuple[Sandbox, HubSpotSandbox, Path],
) -> None:
    box, hub, path = sites
    assert load_config(path).crm.kind == "hubspot"
    checked = run(path, "check", "--online")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK    hubspot object jira_project_status: found" in checked.stdout
    projects = {p.key for p in box.world.projects}
    naming: dict[str, set[str]] = {}
    for company in hub.backend.records[COMPANIES].values():
        for key in str(company.properties.get("jira_project_keys") or "").replace(",", " ").split():
            if key.upper() in projects:
                naming.setdefault(key.upper(), set()).add(company.id)
    assert naming, "the world links no company to a Jira project"

    first = run(path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "pulled: " in first.stdout and "companies" in first.stdout

    reports = hub.backend.records[CUSTOM_TYPE_ID]
    pairs = {
        (str(r.properties["company_id"]), str(r.properties["jira_project_key"]))
        for r in reports.values()
    }
    assert pairs == {(c, key) for key, companies in naming.items() for c in companies}
    for report in reports.values():
        props = report.properties
        key = str(props["jira_project_key"])
        assert props["jira_sync_key"] == f"{key}:{props['company_id']}"
        assert set(hub.backend.associated(CUSTOM_TYPE_ID, report.id, COMPANIES)) == {
            str(props["company_id"])
        }
        work = [i for i in box.jira.by_project[key] if i.issue_type != "Epic"]  # never counted
        done = [i for i in work if CATEGORY[i.status] == "done"]
        assert int(str(props["issues_total"])) == len(work)
        assert int(str(props["issues_done"])) == len(done)
        assert props["health"] in ("Green", "Amber", "Red")

    risky = {key for key, companies in naming.items() if any(_at_risk(hub, c) for c in companies)}
    want = {
        issue.key
        for key in risky
        for issue in box.jira.by_project[key]
        if CATEGORY[issue.status] != "done"
    }
    labelled = {i.key for i in box.jira.issues.values() if LABEL in i.labels}
    assert want, "no at-risk customer in the world: the flags are not tested"
    assert labelled == want

    hub.app.stats.reset()
    box.jira_app.stats.reset()
    second = run(path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "written: nothing" in second.stdout
    assert hub.app.stats.snapshot()["writes"] == 0
    assert box.jira_app.stats.snapshot()["writes"] == 0

    compared = run(path, "reconcile")
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "drift: none" in compared.stdout and "duplicates: none" in compared.stdout
    shown = run(path, "status")
    assert shown.returncode == 0 and "hubspot  companies" in shown.stdout, shown.stdout
    html = path.parent / "report.html"
    rendered = run(path, "report", "--format", "html", "-o", str(html))
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    name = str(next(iter(hub.backend.records[COMPANIES].values())).properties["name"])
    assert name in html.read_text(encoding="utf-8")
