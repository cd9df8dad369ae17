"""``jira-crm-sync demo``: the whole product against the built-in sandbox, no account needed.

Start the sandbox Jira and Salesforce (with ``--crm hubspot``: and a HubSpot portal of the
same world, :class:`HubSpotSide`) over HTTPS on loopback, write a config for them with a
SQLite state store, run a first full sync through the same code path as ``run``, print
what it pushed where, change a few records on both sides as people would (an issue moved
to Done, a customer's CSAT dropped, a case or ticket escalated), run an incremental sync and print
what that one pushed, write the HTML report, then stop everything.

What is printed as pushed is read back from the sandbox itself (report records whose
modification stamp moved, labels and comments that appeared or went), so it shows what the
remote systems now hold, not what the engine believes it did.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from connectors.sandbox.config_file import write_hubspot_config, write_sandbox_config
from connectors.sandbox.hubspot.models import HsRecord
from connectors.sandbox.hubspot.schema import CLOSED_STAGE as HS_CLOSED_STAGE
from connectors.sandbox.hubspot.schema import CUSTOM_NAME as HS_REPORT_OBJECT
from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID as HS_REPORT_TYPE
from connectors.sandbox.hubspot.schema import OPEN_STAGES as HS_OPEN_STAGES
from connectors.sandbox.hubspot.schema import STANDARD_TYPES
from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.schema import (
    SF_ACCOUNT_CSAT_FIELD,
    SF_ACCOUNT_PROJECT_KEY_FIELD,
    SF_REPORT_EXTERNAL_ID,
    SF_REPORT_OBJECT,
)
from connectors.sandbox.server import Tls, make_tls
from connectors.sandbox.stack import Sandbox
from mappings.normalise_crm import project_keys_of
from sync.config import Config, load_config
from sync.cycle.engine import CycleOptions, CycleResult
from sync.cycle.ownership import one_cycle
from sync.store import Store, open_store, repo

#: The demo world: big enough to look real, small enough for `make demo` to stay quick.
ISSUES = 300
ACCOUNTS = 60
SEED = 2
HS_COMPANIES = STANDARD_TYPES["companies"]
HS_TICKETS = STANDARD_TYPES["tickets"]
#: The sandbox portal's company property naming Jira project keys ([link] crm_field).
HS_PROJECT_KEYS = "jira_project_keys"
#: Rows printed per list before "... and N more".
SHOWN = 8
DEFAULT_REPORT = Path("jira-crm-sync-demo-report.html")

Echo = Callable[[str], None]


class DemoError(Exception):
    """A demo step failed; the message says which and what to do."""

    def __init__(self, message: str, exit_code: int = 5) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- the CRM side of the sandbox ----------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    """One progress report record as the CRM sandbox holds it."""

    stamp: Any  # when the CRM last changed it
    health: str
    percent: float
    done: int
    total: int


class CrmSide(Protocol):
    """The sandbox CRM the demo syncs with: served, configured, read and changed."""

    name: str  # "Salesforce"
    report_object: str  # what the reports are upserted to, as the config names it
    customer: str  # one customer record: "account"
    customers: str  # several: "accounts"

    def serve(self, tls: Tls) -> str:
        """Start serving (beside the Jira sandbox, same CA); its URL."""
        ...

    def stop(self) -> None: ...

    def keep_ca(self, ca: Path) -> None:
        """Name ``ca`` (a kept copy of the sandbox CA) in the config it writes."""
        ...

    def write_config(self, path: Path, state_url: str) -> None: ...

    def count(self) -> int:
        """Customers the sandbox holds."""
        ...

    def names(self) -> dict[str, str]:
        """Customer id -> name."""
        ...

    def reports(self) -> dict[str, Report]:
        """External id -> the report record."""
        ...

    def naming(self) -> dict[str, list[str]]:
        """Jira project key -> the customers whose project-key field names it."""
        ...

    def account_field_links(self) -> bool:
        """Whether the config links issues by their Jira customer field too."""
        ...

    def lower_score(self, customer: str) -> str:
        """Drop a customer's satisfaction score; what was done, for the reader."""
        ...

    def escalate(self, customer: str) -> str:
        """Escalate (or open an escalated) case of a customer; what was done."""
        ...

    def reset_stats(self) -> None: ...

    def calls(self) -> tuple[int, int]:
        """(reads, writes) it answered since :meth:`reset_stats`."""
        ...


class SalesforceSide:
    """The Salesforce org of the sandbox stack."""

    name = "Salesforce"
    report_object = SF_REPORT_OBJECT
    customer, customers = "account", "accounts"

    def __init__(self, box: Sandbox) -> None:
        self.box = box

    def serve(self, tls: Tls) -> str:
        ends = self.box.endpoints
        assert ends is not None  # served with the stack
        return ends.salesforce_url

    def stop(self) -> None:
        pass  # stopped with the stack

    def keep_ca(self, ca: Path) -> None:
        pass  # the stack's endpoints name it

    def write_config(self, path: Path, state_url: str) -> None:
        write_sandbox_config(self.box, path, state_url=state_url)

    def count(self) -> int:
        return len(self.box.salesforce.records("Account"))

    def names(self) -> dict[str, str]:
        return {str(a["Id"]): str(a.get("Name")) for a in self.box.salesforce.records("Account")}

    def reports(self) -> dict[str, Report]:
        return {
            str(r[SF_REPORT_EXTERNAL_ID]): Report(
                r.get("SystemModstamp"),
                str(r.get("Health__c")),
                float(r.get("Percent_Complete__c") or 0),
                int(r.get("Issues_Done__c") or 0),
                int(r.get("Issues_Total__c") or 0),
            )
            for r in self.box.salesforce.records(SF_REPORT_OBJECT)
        }

    def naming(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for record in self.box.salesforce.records("Account"):
            for key in str(record.get(SF_ACCOUNT_PROJECT_KEY_FIELD) or "").split(","):
                if key.strip():
                    found.setdefault(key.strip().upper(), []).append(str(record["Id"]))
        return found

    def account_field_links(self) -> bool:
        return True

    def lower_score(self, customer: str) -> str:
        sf = self.box.salesforce
        account = next(a for a in sf.records("Account") if str(a["Id"]) == customer)
        before = account.get(SF_ACCOUNT_CSAT_FIELD)
        sf.update_record("Account", customer, **{SF_ACCOUNT_CSAT_FIELD: 2.4})
        return f"{account.get('Name')} CSAT dropped from {before} to 2.4"

    def escalate(self, customer: str) -> str:
        sf = self.box.salesforce
        name = self.names().get(customer, customer)
        cases = sorted(
            str(c["Id"])
            for c in sf.records("Case")
            if c.get("AccountId") == customer and not c.get("IsClosed")
        )
        if cases:
            sf.update_record("Case", cases[0], IsEscalated=True, Status="Escalated")
            return f"case {cases[0]} of {name} escalated"
        case = sf.create_record(
            "Case",
            AccountId=customer,
            Subject="Go-live blocked",
            Status="Escalated",
            IsEscalated=True,
            IsClosed=False,
        )
        return f"escalated case {case} opened for {name}"

    def reset_stats(self) -> None:
        self.box.salesforce_app.stats.reset()

    def calls(self) -> tuple[int, int]:
        stats = self.box.salesforce_app.stats.snapshot()
        return int(stats["reads"]), int(stats["writes"])


class HubSpotSide:
    """A HubSpot portal of the same world, served beside the stack (`demo --crm hubspot`):
    companies, tickets, the custom object "Jira Project Status"."""

    name = "HubSpot"
    report_object = HS_REPORT_OBJECT
    customer, customers = "company", "companies"

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.hub = HubSpotSandbox(box.world)
        self.portal = self.hub.backend

    def serve(self, tls: Tls) -> str:
        return self.hub.serve(tls.ca_path.parent, tls=tls)

    def stop(self) -> None:
        self.hub.stop()

    def keep_ca(self, ca: Path) -> None:
        self.hub.ca_bundle = ca

    def write_config(self, path: Path, state_url: str) -> None:
        write_hubspot_config(self.box, self.hub, path, state_url)

    def _live(self, type_id: str) -> list[HsRecord]:
        return [
            r
            for r in self.portal.records[type_id].values()
            if r.archived_ms is None and r.merged_into is None
        ]

    def count(self) -> int:
        return len(self._live(HS_COMPANIES))

    def names(self) -> dict[str, str]:
        return {r.id: str(r.properties.get("name")) for r in self._live(HS_COMPANIES)}

    def reports(self) -> dict[str, Report]:
        found = {}
        for record in self._live(HS_REPORT_TYPE):
            props = record.properties
            found[str(props.get("jira_sync_key"))] = Report(
                props.get("hs_lastmodifieddate"),
                str(props.get("health")),
                float(props.get("percent_complete") or 0),
                int(float(props.get("issues_done") or 0)),
                int(float(props.get("issues_total") or 0)),
            )
        return found

    def naming(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for record in self._live(HS_COMPANIES):
            for key in project_keys_of(record.properties.get(HS_PROJECT_KEYS)):
                found.setdefault(key, []).append(record.id)
        return found

    def account_field_links(self) -> bool:
        return False  # the sandbox's Jira customer field holds the org's ids, not these

    def lower_score(self, customer: str) -> str:
        company = self.portal.records[HS_COMPANIES][customer]
        before = company.properties.get("csat_score")
        self.portal.write(HS_COMPANIES, company, {"csat_score": "2.4"})
        return f"{company.properties.get('name')} CSAT dropped to 2.4 (was {before or 'unset'})"

    def escalate(self, customer: str) -> str:
        name = self.names().get(customer, customer)
        tickets = sorted(
            (
                t
                for t in self._live(HS_TICKETS)
                if customer in self.portal.associated(HS_TICKETS, t.id, HS_COMPANIES)
                and t.properties.get("hs_pipeline_stage") != HS_CLOSED_STAGE
            ),
            key=lambda t: int(t.id),
        )
        if tickets:
            self.portal.write(HS_TICKETS, tickets[0], {"hs_ticket_priority": "URGENT"})
            return f"ticket {tickets[0].id} of {name} escalated (priority URGENT)"
        ticket = self.portal.write(
            HS_TICKETS,
            None,
            {
                "subject": "Go-live blocked",
                "hs_pipeline": "0",
                "hs_pipeline_stage": HS_OPEN_STAGES[0],
                "hs_ticket_priority": "URGENT",
            },
        )
        self.portal.associate(HS_TICKETS, ticket.id, HS_COMPANIES, customer, "Primary")
        return f"escalated ticket {ticket.id} opened for {name}"

    def reset_stats(self) -> None:
        self.hub.app.stats.reset()

    def calls(self) -> tuple[int, int]:
        stats = self.hub.app.stats.snapshot()
        return int(stats["reads"]), int(stats["writes"])


def crm_side(crm: str, box: Sandbox) -> CrmSide:
    """The sandbox CRM ``crm`` names (``salesforce``, ``hubspot``)."""
    if crm == "hubspot":
        return HubSpotSide(box)
    if crm == "salesforce":
        return SalesforceSide(box)
    raise DemoError(f"the demo runs against salesforce or hubspot, not {crm!r}", 2)


# --- what the sandbox holds, before and after a cycle ------------------------------------------


@dataclass(frozen=True)
class Remote:
    """The parts of both sides a sync writes to."""

    reports: dict[str, Report]  # external id -> the report record
    labels: dict[str, frozenset[str]]  # issue key -> labels
    comments: dict[str, int]  # issue key -> number of comments

    @property
    def report_stamps(self) -> dict[str, Any]:
        return {key: r.stamp for key, r in self.reports.items()}


def look(box: Sandbox, side: CrmSide | None = None) -> Remote:
    """What the sandbox holds now."""
    return Remote(
        reports=(side or SalesforceSide(box)).reports(),
        labels={key: frozenset(issue.labels) for key, issue in box.jira.issues.items()},
        comments={key: len(found) for key, found in box.jira.comments.items()},
    )


@dataclass(frozen=True)
class Pushed:
    """What one cycle changed on each side."""

    reports: list[str]  # external ids upserted
    labels: list[tuple[str, list[str], list[str]]]  # issue key, labels added, removed
    comments: dict[str, int]  # issue key -> comments posted

    @property
    def issues(self) -> list[str]:
        """Jira issues written to, by label or comment."""
        return sorted({key for key, _a, _r in self.labels} | set(self.comments))


def pushed(before: Remote, after: Remote) -> Pushed:
    """The difference a cycle made."""
    reports = sorted(
        key
        for key, stamp in after.report_stamps.items()
        if key not in before.report_stamps or before.report_stamps[key] != stamp
    )
    labels = []
    for key in sorted(after.labels):
        old, new = before.labels.get(key, frozenset()), after.labels[key]
        if old != new:
            labels.append((key, sorted(new - old), sorted(old - new)))
    comments = {
        key: n - before.comments.get(key, 0)
        for key, n in sorted(after.comments.items())
        if n > before.comments.get(key, 0)
    }
    return Pushed(reports, labels, comments)


# --- the demo ----------------------------------------------------------------------------------


class Demo:
    """One demo run; :meth:`run` does it all and returns the report's path."""

    def __init__(
        self,
        echo: Echo,
        output: Path = DEFAULT_REPORT,
        keep_state: Path | None = None,
        *,
        issues: int = ISSUES,
        accounts: int = ACCOUNTS,
        seed: int = SEED,
        crm: str = "salesforce",
    ) -> None:
        self.echo = echo
        self.output = output
        self.keep_state = keep_state
        self.box = Sandbox(issues=issues, accounts=accounts, seed=seed)
        self.side = crm_side(crm, self.box)

    def run(self) -> Path:
        """Sandbox up, full sync, changes, incremental sync, report, sandbox down."""
        self._check_output()
        side = self.side
        with ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jcs-demo-")))
            tls = make_tls(work / "tls")
            ends = self.box.serve(work / "tls", tls=tls)
            stack.callback(self.box.stop)
            url = side.serve(tls)
            stack.callback(side.stop)
            self.echo(
                f"Sandbox Jira at {ends.jira_url} and {side.name} at {url} "
                f"({len(self.box.jira.issues)} issues, {side.count()} {side.customers}; "
                "stopped when the demo ends)"
            )
            home = self.keep_state or work
            home.mkdir(parents=True, exist_ok=True)
            if self.keep_state is not None and ends.ca_bundle is not None:
                # The kept config must still load after the demo: it names a copy of the
                # sandbox's CA certificate (public; the server key stays in the temp dir).
                ca_copy = home / "sandbox-ca.pem"
                shutil.copyfile(ends.ca_bundle, ca_copy)
                self.box.endpoints = replace(ends, ca_bundle=ca_copy.resolve())
                side.keep_ca(ca_copy.resolve())
            config_path = home / "jira-crm-sync.toml"
            state = (home / "state.db").resolve()
            side.write_config(config_path, f"sqlite:///{state}")
            config = load_config(config_path)
            store = open_store(config.state.url)
            stack.callback(store.close)
            kept = "" if self.keep_state else " (temporary: --keep-state DIR keeps it)"
            self.echo(f"State store: {state}{kept}\n")

            first = self._cycle("1. First full sync", config, store)
            self.echo("")
            self._change(store)
            self.echo("")
            second = self._cycle("3. Incremental sync", config, store)
            self._check_small(first, second)
            self.echo("")
            self._report(store, config)
            if self.keep_state is not None:
                self.echo(
                    f"State kept in {home.resolve()}: `jira-crm-sync --config "
                    f"{config_path.resolve()} status` "
                    "shows it (the sandbox itself is gone)."
                )
        return self.output

    def _cycle(self, title: str, config: Config, store: Store) -> Pushed:
        self.box.jira_app.stats.reset()
        self.side.reset_stats()
        before = look(self.box, self.side)
        started = time.monotonic()
        result = one_cycle(config, store, CycleOptions())
        took = time.monotonic() - started
        if int(result.exit_code) != 0:
            raise DemoError(
                f"{title.split('. ', 1)[-1].lower()} failed: {result.message}",
                int(result.exit_code),
            )
        after = look(self.box, self.side)
        done = pushed(before, after)
        self.echo(f"{title}: {took:.1f} s, {self._calls()}")
        self.echo(f"   read: {_counts(result)}")
        self._print_pushed(done, after)
        return done

    def _calls(self) -> str:
        jira = self.box.jira_app.stats.snapshot()
        reads, writes = self.side.calls()
        return (
            f"{jira['reads']} Jira reads + {jira['writes']} writes, "
            f"{reads} {self.side.name} reads + {writes} writes"
        )

    def _print_pushed(self, done: Pushed, now: Remote) -> None:
        side = self.side
        names = side.names()
        self.echo(
            f"   {side.name}: {len(done.reports)} {side.report_object} record(s) upserted "
            f"(project x {side.customer}: health, percent complete, issues done/total)"
        )
        for key in done.reports[:SHOWN]:
            r = now.reports[key]
            project, customer = key.split(":", 1)
            self.echo(
                f"     {project} x {names.get(customer, customer)}: {r.health}, "
                f"{r.percent:.1f}%, {r.done}/{r.total}"
            )
        _more(self.echo, len(done.reports))
        labels = {key: (added, removed) for key, added, removed in done.labels}
        self.echo(
            f"   Jira: {len(done.issues)} issue(s) updated "
            f"({sum(len(a) + len(r) for a, r in labels.values())} label change(s), "
            f"{sum(done.comments.values())} flag comment(s))"
        )
        for key in sorted(done.issues, key=_issue_order)[:SHOWN]:
            added, removed = labels.get(key, ([], []))
            parts = [f"+{label}" for label in added] + [f"-{label}" for label in removed]
            if done.comments.get(key):
                parts.append(f"{done.comments[key]} comment(s)")
            self.echo(f"     {key}: {', '.join(parts)}")
        _more(self.echo, len(done.issues))

    def _change(self, store: Store) -> None:
        """Change records on both sides as people would: an at-risk issue resolved, a
        customer's CSAT dropped, a case escalated."""
        self.echo("2. Changes made in the sandbox, as people would:")
        jira = self.box.jira
        # An open story or task (epics are not counted), labelled at-risk if one is: its
        # report changes, and its label comes off.
        candidates = sorted(
            (
                "customer-at-risk" not in issue.labels,
                issue.project_key,
                int(key.rsplit("-", 1)[1]),
                key,
            )
            for key, issue in jira.issues.items()
            if issue.status != "Done" and issue.issue_type != "Epic"
        )
        resolved = candidates[0][-1]
        was = jira.issue(resolved).status
        jira.update_issue(resolved, status="Done")
        self.echo(f"   Jira: {resolved} moved from {was} to Done")

        calm = self._calm_linked_customers(store)
        if calm:
            self.echo(f"   {self.side.name}: {self.side.lower_score(calm[0])}")
        if len(calm) > 1:
            self.echo(f"   {self.side.name}: {self.side.escalate(calm[1])}")

    def _calm_linked_customers(self, store: Store) -> list[str]:
        """Customers flagged ``ok`` with open issues of their own, fewest first: a change
        to one shows on a few issues."""
        with store.read() as conn:
            flags = repo.get_flags(conn)
        # The sandbox config's link rules: the issue's customer field (when the config
        # reads it), else its epic's, else the customers whose project-key field names
        # the project.
        naming = self.side.naming()
        by_field = self.side.account_field_links()
        issues = self.box.jira.issues
        open_work: dict[str, int] = {}
        for issue in issues.values():
            if issue.status == "Done":
                continue
            linked = issue.account_id if by_field else None
            if linked is None and by_field and issue.parent_key in issues:
                linked = issues[issue.parent_key].account_id
            for owner in [linked] if linked else naming.get(issue.project_key, []):
                open_work[owner] = open_work.get(owner, 0) + 1
        calm = [c for c, flag in flags.items() if flag.level == "ok" and open_work.get(c)]
        return sorted(calm, key=lambda c: (open_work[c], c))

    def _check_small(self, first: Pushed, second: Pushed) -> None:
        wrote = len(second.reports) + len(second.issues)
        everything = len(first.reports) + len(first.issues)
        self.echo(
            f"   {wrote} record(s) written for these changes, against {everything} in the "
            "first sync: only what changed is written"
        )

    def _check_output(self) -> None:
        """Refuse a report path that cannot be written before spending time on syncs."""
        problem = None
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            problem = exc.strerror or str(exc)
        if problem is None and self.output.is_dir():
            problem = "it is a directory"
        elif problem is None and not os.access(self.output.parent, os.W_OK):
            problem = "its directory is not writable"
        if problem is not None:
            raise DemoError(
                f"cannot write the report to {self.output}: {problem}; "
                "choose another place with --output",
                2,
            )

    def _report(self, store: Store, config: Config) -> None:
        from sync.report import ReportError, render_report

        try:
            html = render_report(store, config, fmt="html")
        except ReportError as exc:
            raise DemoError(f"the report could not be made: {exc}") from exc
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            self.output.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise DemoError(
                f"cannot write the report to {self.output}: {exc.strerror or exc}; "
                "choose another place with --output",
                2,
            ) from exc
        self.echo(f"4. HTML progress report: {self.output.resolve()}")


def _counts(result: CycleResult) -> str:
    names = {"jira_issues": "Jira issues", "jira_deleted": "Jira deletions"}
    read = [f"{n} {names.get(what, what)}" for what, n in sorted(result.pulled.items()) if n]
    return ", ".join(read) or "nothing new"


def _issue_order(key: str) -> tuple[str, int]:
    project, _, number = key.rpartition("-")
    return project, int(number) if number.isdigit() else 0


def _more(echo: Echo, total: int) -> None:
    if total > SHOWN:
        echo(f"     ... and {total - SHOWN} more")
