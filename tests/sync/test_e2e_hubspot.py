"""The real `jira-crm-sync run` with ``[crm] kind = "hubspot"``: the HTTPS Jira sandbox and
the HTTPS HubSpot sandbox portal of the same world. A first run pulls companies and
tickets, links Jira projects to the companies naming them, upserts one progress report
per (company, project) to the portal's custom object (associated to its company) and
labels the open work of at-risk customers in Jira; a second run writes nothing, and
`check --online` before and `reconcile` after find nothing wrong; `status` and
`report` read the store it left. The first run is the installed entry point in a process
of its own; the other commands run the same typer app in-process (faster).

The variants run the same sandboxes with other settings (in-process CLI, SQLite): Jira
work linked by a Jira field holding HubSpot company ids, satisfaction from survey answers
(feedback submissions), the HTML report uploaded as a note on each company, and a portal
without the custom object (reports into company properties, one per company: its main
project's), where a merge of two companies moves the merged-away one's Jira work to the
survivor. Each checks the report records and labels, then that a second run writes
nothing and a no-change cycle costs 3 reads (4 with survey answers: HubSpot searches one
object type per call), and that reconcile finds nothing wrong.

What the reports and labels must be is computed here from the two sandboxes' records, not
by mappings/.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from connectors.sandbox.config_file import write_hubspot_config
from connectors.sandbox.hubspot.schema import CLOSED_STAGE, CUSTOM_TYPE_ID, STANDARD_TYPES
from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cli import app as cli_app
from sync.config import load_config
from sync.report.upload import file_name, period_of
from tests.sync.e2e import ANCHOR, CATEGORY, CLI, LABEL, _own_or_inherited, cli_env, make_sandbox

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


def invoke(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``jira-crm-sync --config <path> <args>`` in-process (the same typer app as the
    entry point, without an interpreter's start-up); an exception it let escape is raised."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(cli_app, ["--config", str(path), *args])
    finally:  # the CLI points the root logger at its own (captured) stderr
        root.handlers[:], root.level = handlers, level
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed entry point in a process of its own."""
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
    checked = invoke(path, "check", "--online")
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
    second = invoke(path, "run")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "written: nothing" in second.stdout
    assert hub.app.stats.snapshot()["writes"] == 0
    assert box.jira_app.stats.snapshot()["writes"] == 0

    compared = invoke(path, "reconcile")
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "drift: none" in compared.stdout and "duplicates: none" in compared.stdout
    shown = invoke(path, "status")
    assert shown.returncode == 0 and "hubspot  companies" in shown.stdout, shown.stdout
    header = next(line for line in shown.stdout.splitlines() if line.startswith("  run  started"))
    assert "wrote hubspot/jira" in header and "calls jira/hubspot" in header  # not "sf"
    html = path.parent / "report.html"
    rendered = invoke(path, "report", "--format", "html", "-o", str(html))
    assert rendered.returncode == 0, rendered.stdout + rendered.stderr
    name = str(next(iter(hub.backend.records[COMPANIES].values())).properties["name"])
    assert name in html.read_text(encoding="utf-8")


# --- variants: Jira-field links with HubSpot ids, surveys, uploads, company properties ------

CONTACTS = STANDARD_TYPES["contacts"]
FEEDBACK = STANDARD_TYPES["feedback_submissions"]
NOTES = STANDARD_TYPES["notes"]
NPS_AT_RISK = 7.0
#: Report properties compared with what the records say (the rest move with the clock).
COUNTED = ("issues_total", "issues_done", "issues_in_progress", "issues_to_do")


@dataclass
class Portal:
    """The two sandboxes, the config and an in-process CLI pointed at them."""

    box: Sandbox
    hub: HubSpotSandbox
    path: Path

    def cli(self, *args: str) -> tuple[int, str]:
        """``jira-crm-sync --config <config> <args>`` in-process: (exit code, its output)."""
        code, out, err = self.invoke(*args)
        return code, out + err

    def document(self, *args: str) -> Any:
        """The JSON document a ``--json`` command prints on stdout."""
        code, out, err = self.invoke(*args, "--json")
        assert code == 0, out + err
        return json.loads(out)

    def invoke(self, *args: str) -> tuple[int, str, str]:
        done = invoke(self.path, *args)
        return done.returncode, done.stdout, done.stderr

    def reset_stats(self) -> None:
        self.hub.app.stats.reset()
        self.box.jira_app.stats.reset()

    def stats(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.hub.app.stats.snapshot(), self.box.jira_app.stats.snapshot()


VARIANTS = {
    # A custom object; satisfaction from NPS answers (no escalation rule); uploads on.
    "surveys-uploads": (
        ('source = "account_field"', 'source = "survey"'),
        ("scale = 5", "scale = 10"),
        ("at_risk_below = 3.5", f"at_risk_below = {NPS_AT_RISK}"),
        ("watch_below = 4.0", "watch_below = 8.0"),
        ("escalated_cases_at_risk = 1", "escalated_cases_at_risk = 0"),
        ("window_days = 90", "window_days = 3650"),
        ("upload = false", "upload = true"),
    ),
    # No custom object (a portal below Enterprise): reports into company properties.
    "company-properties": (),
}


@pytest.fixture(params=sorted(VARIANTS))
def portal(request: pytest.FixtureRequest, tmp_path: Path, tls: Tls) -> Iterator[Portal]:
    box = make_sandbox(80, 12, seed=2, anchor=ANCHOR)
    box.serve(tmp_path, tls=tls)
    hub = HubSpotSandbox(box.world, enterprise=request.param != "company-properties")
    # The runs follow each other within a second, each with a client of its own: the
    # portal's 5 searches a second would answer one 429 (waited out, but counted as a call)
    # and the read counts below would depend on the machine's speed. The limit itself is
    # tested in tests/reliability/test_hubspot_faults.py.
    hub.backend.search_per_second = 1000
    hub.serve(tmp_path, tls=tls)
    # The Jira field holds HubSpot company ids: the sandbox's Salesforce ids translated.
    by_name = {str(c.properties["name"]): c.id for c in hub.backend.records[COMPANIES].values()}
    company_of = {a.id: by_name[a.name] for a in box.world.accounts}
    assert len(set(company_of.values())) == len(box.world.accounts)
    for issue in box.jira.issues.values():
        if issue.account_id is not None:
            issue.account_id = company_of[issue.account_id]
    # One company's work in both projects (its main project is the lower key): an ORION
    # story names the company most of APOLLO's work names.
    apollo, orion = sorted(p.key for p in box.world.projects)
    named = Counter(i.account_id for i in box.jira.by_project[apollo] if i.account_id)
    story = next(i for i in box.jira.by_project[orion] if i.account_id and i.issue_type != "Epic")
    story.account_id = named.most_common(1)[0][0]
    path = tmp_path / "jira-crm-sync.toml"
    write_hubspot_config(box, hub, path, f"sqlite:///{tmp_path / 'state.db'}")
    text = path.read_text(encoding="utf-8")
    edits = (
        ('order = ["crm_field", "static"]', 'order = ["jira_field", "crm_field", "static"]'),
        *VARIANTS[request.param],
    )
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")
    try:
        yield Portal(box, hub, path)
    finally:
        hub.stop()
        box.stop()


def _live_companies(hub: HubSpotSandbox) -> dict[str, Any]:
    return {
        rid: c
        for rid, c in hub.backend.records[COMPANIES].items()
        if c.archived_ms is None and c.merged_into is None
    }


def _nps_mean(hub: HubSpotSandbox, company: str) -> float | None:
    """The mean NPS answer of the company's contacts (the window takes them all)."""
    backend = hub.backend
    scores = [
        float(str(answer.properties["hs_response_value"]))
        for answer in backend.records[FEEDBACK].values()
        if answer.properties.get("hs_survey_type") == "NPS"
        and any(
            company in backend.associated(CONTACTS, contact, COMPANIES)
            for contact in backend.associated(FEEDBACK, answer.id, CONTACTS)
        )
    ]
    return sum(scores) / len(scores) if scores else None


def _expected(portal: Portal, surveys: bool) -> tuple[dict[str, dict[str, int]], set[str]]:
    """Reports (counted fields by ``KEY:company``) and labelled issues: a work item is the
    company's its own field names, or its parent's (then epic's), a merged-away company's
    work the survivor's; else the companies naming its project's. At risk: the NPS mean
    below 7 (surveys), else the CSAT rule or an open escalated ticket."""
    box, hub = portal.box, portal.hub
    companies = _live_companies(hub)
    survivor = {
        merged: rid
        for rid, c in companies.items()
        for merged in str(c.properties.get("hs_merged_object_ids") or "").split(";")
        if merged
    }
    naming: dict[str, set[str]] = {}
    for rid, company in companies.items():
        for key in str(company.properties.get("jira_project_keys") or "").replace(",", " ").split():
            naming.setdefault(key.upper(), set()).add(rid)
    issues = box.jira.issues
    links: dict[str, set[str]] = {}
    for key, issue in issues.items():
        value = _own_or_inherited(issues, key)
        value = survivor.get(str(value), value)
        if value is not None and value in companies:
            links[key] = {value}
        elif naming.get(issue.project_key):
            links[key] = naming[issue.project_key]
    reports: dict[str, dict[str, int]] = {}
    for key, issue in issues.items():
        for company in links.get(key, ()):
            counts = reports.setdefault(f"{issue.project_key}:{company}", dict.fromkeys(COUNTED, 0))
            if issue.issue_type == "Epic":
                continue  # linked (the pair exists), never counted
            category = CATEGORY[issue.status]
            counts["issues_total"] += 1
            counts[
                {"done": "issues_done", "in_progress": "issues_in_progress"}.get(
                    category, "issues_to_do"
                )
            ] += 1
    if surveys:
        risky = {c for c in companies if (m := _nps_mean(hub, c)) is not None and m < NPS_AT_RISK}
    else:
        risky = {c for c in companies if _at_risk(hub, c)}
    labelled = {
        key
        for key, issue in issues.items()
        if CATEGORY[issue.status] != "done" and links.get(key, set()) & risky
    }
    return reports, labelled


def _reports_written(portal: Portal, custom: bool) -> dict[str, dict[str, int]]:
    """The counted fields of the reports in the portal, by ``KEY:company``."""
    backend = portal.hub.backend
    found: dict[str, dict[str, int]] = {}
    if custom:
        for record in backend.records[CUSTOM_TYPE_ID].values():
            props = record.properties
            key = f"{props['jira_project_key']}:{props['company_id']}"
            assert props["jira_sync_key"] == key and key not in found  # one record a pair
            assert set(backend.associated(CUSTOM_TYPE_ID, record.id, COMPANIES)) == {
                str(props["company_id"])
            }
            found[key] = {f: int(str(props[f])) for f in COUNTED}
        return found
    for rid, company in _live_companies(portal.hub).items():
        props = company.properties
        if props.get("jira_project_key"):
            key = f"{props['jira_project_key']}:{rid}"
            assert props["jira_sync_key"] == key
            found[key] = {f: int(str(props[f])) for f in COUNTED}
    return found


def _main_only(reports: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Each company's main-project report (the lowest project key)."""
    main: dict[str, str] = {}
    for key in reports:
        project, company = key.split(":")
        main[company] = min(main.get(company, project), project)
    return {
        f"{project}:{company}": reports[f"{project}:{company}"] for company, project in main.items()
    }


def _check(portal: Portal, variant: str, *, chosen: bool = True) -> None:
    custom = variant != "company-properties"
    want, labelled = _expected(portal, surveys=variant == "surveys-uploads")
    assert want and labelled, "the world gives nothing to check"
    if not custom:
        if chosen:
            assert len(_main_only(want)) < len(want), "no company in two projects: none chosen"
        want = _main_only(want)
    assert _reports_written(portal, custom) == want
    assert {i.key for i in portal.box.jira.issues.values() if LABEL in i.labels} == labelled


def _no_change_cycles(portal: Portal, surveys: bool) -> None:
    """A second run writes nothing; the next, with nothing changed, costs 3 reads: one
    Jira search, one search of companies and one of tickets (with survey answers one
    more: HubSpot searches one object type per call, so 4 is that floor)."""
    portal.reset_stats()
    code, out = portal.cli("run")
    assert code == 0 and "written: nothing" in out, out
    hub, jira = portal.stats()
    assert (hub["writes"], jira["writes"]) == (0, 0), (hub, jira)
    portal.reset_stats()
    code, out = portal.cli("run")
    assert code == 0 and "written: nothing" in out, out
    hub, jira = portal.stats()
    assert (hub["writes"], jira["writes"]) == (0, 0), (hub, jira)
    searches = {"POST /crm/v3/objects/{type}/search": 3 if surveys else 2}
    assert (hub["by_endpoint"], jira["reads"]) == (searches, 1), (hub, jira)
    assert hub["reads"] + jira["reads"] <= (4 if surveys else 3)


def test_variants_report_flag_and_then_write_nothing(
    portal: Portal, request: pytest.FixtureRequest
) -> None:
    variant = request.node.callspec.params["portal"]
    code, out = portal.cli("check", "--online")
    assert code == 0, out
    # Without the custom object the check says where the reports go (not "found").
    folded = [x for x in out.splitlines() if "the reports go into the customer records" in x]
    assert len(folded) == (variant == "company-properties"), out
    assert all(x.startswith("WARN  hubspot object ") for x in folded), folded
    code, out = portal.cli("run")
    assert code == 0, out
    _check(portal, variant)
    if variant == "surveys-uploads":
        _check_uploads(portal)
    _no_change_cycles(portal, surveys=variant == "surveys-uploads")
    code, out = portal.cli("reconcile")
    assert code == 0 and "drift: none" in out and "duplicates: none" in out, out
    if variant == "company-properties":
        _check_merge(portal, variant)
        _check_main_moves(portal, variant)


def _check_uploads(portal: Portal) -> None:
    """``[report] upload``: one note a linked company, carrying its HTML report as a file."""
    backend = portal.hub.backend
    period, _start = period_of(datetime.now(UTC), "weekly")
    want, _labelled = _expected(portal, surveys=True)
    linked = {key.split(":")[1] for key in want}
    notes: dict[str, list[str]] = {}
    for note in backend.records[NOTES].values():
        for company in backend.associated(NOTES, note.id, COMPANIES):
            notes.setdefault(company, []).append(str(note.properties["hs_attachment_ids"]))
    assert set(notes) == linked and all(len(files) == 1 for files in notes.values()), notes
    for company, (file_id,) in notes.items():
        stored = backend.files[file_id]
        assert f"{stored['name']}.{stored['extension']}" == file_name(period, company)
        name = str(backend.records[COMPANIES][company].properties["name"])
        assert name in stored["content"].decode("utf-8")


def _check_merge(portal: Portal, variant: str) -> None:
    """Merge a company whose own Jira work names it into another: the next run links that
    work to the survivor (no link problem names the merged-away id) and reports it there;
    the run after writes nothing."""
    backend = portal.hub.backend
    named = Counter(i.account_id for i in portal.box.jira.issues.values() if i.account_id)
    survivor, merged = (backend.records[COMPANIES][rid] for rid, _n in named.most_common(2))
    backend.merge(COMPANIES, survivor, merged)
    code, out = portal.cli("run")
    assert code == 0, out
    _check(portal, variant)
    problems = portal.document("status")["link_problems"]
    assert not any(merged.id in str(p) for p in problems), problems
    _no_change_cycles(portal, surveys=variant == "surveys-uploads")


def _check_main_moves(portal: Portal, variant: str) -> None:
    """A company in two projects loses its main one (that project's work names another
    company now): after the next run, reconcile --apply leaves the company holding its
    other project's report, reconcile then finds nothing, and nothing is written again."""
    box = portal.box
    want, _labelled = _expected(portal, surveys=False)
    projects: dict[str, set[str]] = {}
    for key in want:
        project, company = key.split(":")
        projects.setdefault(company, set()).add(project)
    company = next(c for c, keys in sorted(projects.items()) if len(keys) > 1)
    main = min(projects[company])
    other = next(c for c in sorted(_live_companies(portal.hub)) if c != company)
    for issue in list(box.jira.by_project[main]):
        if issue.account_id == company:
            box.jira.update_issue(issue.key, account_id=other)
    after, _labelled = _expected(portal, surveys=False)
    assert f"{main}:{company}" not in after and any(k.endswith(f":{company}") for k in after)
    code, out = portal.cli("run")
    assert code == 0, out
    code, out = portal.cli("reconcile", "--apply")
    assert code == 0, out
    _check(portal, variant, chosen=False)
    code, out = portal.cli("reconcile")
    assert code == 0 and "drift: none" in out, out
    _no_change_cycles(portal, surveys=False)
