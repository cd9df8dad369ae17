"""exit_for, the one error-to-exit map: every exception family of connectors/exceptions.py
and of sync/, and the rule for a spent API budget (a cycle's clean stop, reconcile's
failure to read)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import connectors.exceptions as connector_errors
from connectors.exceptions import (
    AuthError,
    BudgetExhausted,
    ConfigError,
    ConnectorError,
    QueryError,
    RecordError,
    RejectedRecord,
    RemoteError,
    RetriableError,
    UnreachableError,
)
from sync.config import ConfigFileError
from sync.connections import ConnectionsError
from sync.demo import DemoError
from sync.exitcodes import ExitCode, exit_for
from sync.init_config import InitError
from sync.report import ReportError
from sync.schedule import ScheduleError
from sync.serve import ListenError
from sync.store import LockHeld, StoreError

ROOT = Path(__file__).resolve().parents[2]

CONNECTOR_ERRORS: list[tuple[Exception, ExitCode]] = [
    (ConfigError("no field Story_Points__c", side="salesforce"), ExitCode.USAGE),
    (QueryError("JQL: project APOLO does not exist", side="jira"), ExitCode.USAGE),
    (AuthError("401: the token was refused", side="jira"), ExitCode.REMOTE),
    (UnreachableError("connection refused", side="salesforce"), ExitCode.REMOTE),
    (RetriableError("503 three times", side="jira", retry_after=30), ExitCode.REMOTE),
    (RemoteError("500 with a stack trace", side="salesforce", status=500), ExitCode.REMOTE),
    (
        RejectedRecord("APOLLO:ACME", [RecordError("FIELD_INTEGRITY", "bad")], side="salesforce"),
        ExitCode.REMOTE,
    ),
    (ConnectorError("something else the remote did"), ExitCode.REMOTE),
]

SYNC_ERRORS: list[tuple[Exception, ExitCode]] = [
    (LockHeld("another run holds the lock"), ExitCode.LOCKED),
    (StoreError("cannot open the state file"), ExitCode.USAGE),
    (ConfigFileError("x.toml", ["[jira] url: missing"]), ExitCode.USAGE),
    (ScheduleError("[schedule] every: not a cron expression"), ExitCode.USAGE),
    (ListenError("cannot listen on 127.0.0.1:80"), ExitCode.USAGE),
    (ConnectionsError("no connection 'acme' in /etc/jira-crm-sync/connections"), ExitCode.USAGE),
    (ReportError("no customer ACME"), ExitCode.USAGE),
    (InitError("exists; pass --force"), ExitCode.USAGE),
    (DemoError("the cycle parked writes", exit_code=1), ExitCode.PARKED),
    (DemoError("the sandbox broke"), ExitCode.INTERNAL),
]


@pytest.mark.parametrize(
    ("exc", "code"), CONNECTOR_ERRORS + SYNC_ERRORS, ids=lambda v: type(v).__name__
)
def test_each_family_has_its_exit_code_in_a_cycle_and_in_reconcile(
    exc: Exception, code: ExitCode
) -> None:
    assert exit_for(exc) is code
    assert exit_for(exc, whole_read=True) is code  # only a spent budget differs


def test_a_spent_budget_is_a_clean_stop_for_a_cycle_and_a_failure_for_reconcile() -> None:
    spent = BudgetExhausted("salesforce: 5000 calls today", side="salesforce")
    assert exit_for(spent) is ExitCode.OK  # run and serve: resumes next cycle
    assert exit_for(spent, whole_read=True) is ExitCode.REMOTE  # reconcile: no answer


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("x"), RuntimeError(), OSError(5)])
def test_anything_else_is_an_internal_error(exc: Exception) -> None:
    assert exit_for(exc) is ExitCode.INTERNAL


def test_every_connector_error_class_is_classified() -> None:
    """A family added to connectors/exceptions.py must be given its code here first."""
    families = {
        cls
        for _, cls in inspect.getmembers(connector_errors, inspect.isclass)
        if issubclass(cls, ConnectorError)
    }
    tested = {type(exc) for exc, _ in CONNECTOR_ERRORS} | {BudgetExhausted}
    assert families == tested


def test_exit_for_imports_nothing_it_does_not_need() -> None:
    """A failing command that never loaded the serve, demo or report modules exits
    without importing them (nor the store's database library) to classify its error."""
    code = (
        "import sys; from sync.exitcodes import exit_for; "
        "print(int(exit_for(ValueError()))); "
        "print(sorted(m for m in ('sync.serve', 'sync.demo', 'sync.report', 'sync.store',"
        " 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["5", "[]"]
