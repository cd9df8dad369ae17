"""``jira-crm-sync demo``: the whole product against the built-in sandbox, no account needed.

Start the sandbox Jira and Salesforce over HTTPS on loopback, write a config for them with a
SQLite state store, run a first full sync through the same code path as ``run``, print
what it pushed where, change a few records on both sides as people would (an issue moved
to Done, an account's CSAT dropped, a case escalated), run an incremental sync and print
what that one pushed, write the HTML report, then stop everything.

What is printed as pushed is read back from the sandbox itself (report records whose
``SystemModstamp`` moved, labels and comments that appeared or went), so it shows what the
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
from typing import Any

from connectors.sandbox.config_file import write_sandbox_config
from connectors.sandbox.schema import (
    SF_ACCOUNT_CSAT_FIELD,
    SF_ACCOUNT_PROJECT_KEY_FIELD,
    SF_REPORT_EXTERNAL_ID,
    SF_REPORT_OBJECT,
)
from connectors.sandbox.stack import Sandbox
from sync.config import Config, load_config
from sync.cycle.engine import CycleOptions, CycleResult
from sync.cycle.ownership import one_cycle
from sync.store import Store, open_store, repo

#: The demo world: big enough to look real, small enough for `make demo` to stay quick.
ISSUES = 300
ACCOUNTS = 60
SEED = 2
#: Rows printed per list before "... and N more".
SHOWN = 8
DEFAULT_REPORT = Path("jira-crm-sync-demo-report.html")

Echo = Callable[[str], None]


class DemoError(Exception):
    """A demo step failed; the message says which and what to do."""

    def __init__(self, message: str, exit_code: int = 5) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --- what the sandbox holds, before and after a cycle ------------------------------------------


@dataclass(frozen=True)
class Remote:
    """The parts of both sides a sync writes to."""

    report_stamps: dict[str, Any]  # external id -> SystemModstamp
    labels: dict[str, frozenset[str]]  # issue key -> labels
    comments: dict[str, int]  # issue key -> number of comments


def look(box: Sandbox) -> Remote:
    """What the sandbox holds now."""
    return Remote(
        report_stamps={
            str(r[SF_REPORT_EXTERNAL_ID]): r.get("SystemModstamp")
            for r in box.salesforce.records(SF_REPORT_OBJECT)
        },
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
    ) -> None:
        self.echo = echo
        self.output = output
        self.keep_state = keep_state
        self.box = Sandbox(issues=issues, accounts=accounts, seed=seed)

    def run(self) -> Path:
        """Sandbox up, full sync, changes, incremental sync, report, sandbox down."""
        self._check_output()
        with ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jcs-demo-")))
            ends = self.box.serve(work / "tls")
            stack.callback(self.box.stop)
            self.echo(
                f"Sandbox Jira at {ends.jira_url} and Salesforce at {ends.salesforce_url} "
                f"({len(self.box.jira.issues)} issues, "
                f"{len(self.box.salesforce.records('Account'))} accounts; "
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
            config_path = home / "jira-crm-sync.toml"
            state = (home / "state.db").resolve()
            write_sandbox_config(self.box, config_path, state_url=f"sqlite:///{state}")
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
        self.box.salesforce_app.stats.reset()
        before = look(self.box)
        started = time.monotonic()
        result = one_cycle(config, store, CycleOptions())
        took = time.monotonic() - started
        if int(result.exit_code) != 0:
            raise DemoError(
                f"{title.split('. ', 1)[-1].lower()} failed: {result.message}",
                int(result.exit_code),
            )
        done = pushed(before, look(self.box))
        self.echo(f"{title}: {took:.1f} s, {_calls(self.box)}")
        self.echo(f"   read: {_counts(result)}")
        self._print_pushed(done, store)
        return done

    def _print_pushed(self, done: Pushed, store: Store) -> None:
        records = {
            str(r[SF_REPORT_EXTERNAL_ID]): r for r in self.box.salesforce.records(SF_REPORT_OBJECT)
        }
        names = {str(a["Id"]): str(a.get("Name")) for a in self.box.salesforce.records("Account")}
        self.echo(
            f"   Salesforce: {len(done.reports)} {SF_REPORT_OBJECT} record(s) upserted "
            "(project x account: health, percent complete, issues done/total)"
        )
        for key in done.reports[:SHOWN]:
            r = records[key]
            project, account = key.split(":", 1)
            self.echo(
                f"     {project} x {names.get(account, account)}: {r.get('Health__c')}, "
                f"{float(r.get('Percent_Complete__c') or 0):.1f}%, "
                f"{int(r.get('Issues_Done__c') or 0)}/{int(r.get('Issues_Total__c') or 0)}"
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
        """Change records on both sides as people would: an at-risk issue resolved, an
        account's CSAT dropped, a case escalated."""
        self.echo("2. Changes made in the sandbox, as people would:")
        jira, sf = self.box.jira, self.box.salesforce
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

        calm = self._calm_linked_accounts(store)
        accounts = {str(a["Id"]): a for a in sf.records("Account")}
        if calm:
            unhappy = calm[0]
            before = accounts[unhappy].get(SF_ACCOUNT_CSAT_FIELD)
            sf.update_record("Account", unhappy, **{SF_ACCOUNT_CSAT_FIELD: 2.4})
            self.echo(
                f"   Salesforce: {accounts[unhappy].get('Name')} CSAT dropped from {before} to 2.4"
            )
        if len(calm) > 1:
            escalating = calm[1]
            cases = sorted(
                str(c["Id"])
                for c in sf.records("Case")
                if c.get("AccountId") == escalating and not c.get("IsClosed")
            )
            name = accounts[escalating].get("Name")
            if cases:
                sf.update_record("Case", cases[0], IsEscalated=True, Status="Escalated")
                self.echo(f"   Salesforce: case {cases[0]} of {name} escalated")
            else:
                case = sf.create_record(
                    "Case",
                    AccountId=escalating,
                    Subject="Go-live blocked",
                    Status="Escalated",
                    IsEscalated=True,
                    IsClosed=False,
                )
                self.echo(f"   Salesforce: escalated case {case} opened for {name}")

    def _calm_linked_accounts(self, store: Store) -> list[str]:
        """Accounts flagged ``ok`` with open issues of their own, fewest first: a change
        to one shows on a few issues."""
        with store.read() as conn:
            flags = repo.get_flags(conn)
        # The sandbox config's link rules: the issue's account, else its epic's, else the
        # accounts whose project-key field names the project.
        naming: dict[str, list[str]] = {}
        for record in self.box.salesforce.records("Account"):
            for key in str(record.get(SF_ACCOUNT_PROJECT_KEY_FIELD) or "").split(","):
                if key.strip():
                    naming.setdefault(key.strip().upper(), []).append(str(record["Id"]))
        issues = self.box.jira.issues
        open_work: dict[str, int] = {}
        for issue in issues.values():
            if issue.status == "Done":
                continue
            account = issue.account_id
            if account is None and issue.parent_key in issues:
                account = issues[issue.parent_key].account_id
            for owner in [account] if account else naming.get(issue.project_key, []):
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


def _calls(box: Sandbox) -> str:
    jira = box.jira_app.stats.snapshot()
    sf = box.salesforce_app.stats.snapshot()
    return (
        f"{jira['reads']} Jira reads + {jira['writes']} writes, "
        f"{sf['reads']} Salesforce reads + {sf['writes']} writes"
    )


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
