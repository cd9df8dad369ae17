"""Jira Cloud's bulk edit: one change to many issues in one call, run as a queued task.

``POST /rest/api/3/bulk/issues/fields`` takes up to :data:`MAX_ISSUES` issues and one set
of field edits (here: labels added or removed, a single-line text field set or cleared),
answers ``201 {"taskId"}``, and Jira runs the task later; ``GET /rest/api/3/bulk/queue/
{taskId}`` tells its progress, and once it is COMPLETE which issues were edited
(``processedAccessibleIssues``), which failed and why (``failedAccessibleIssues``) and how
many were invalid or not visible (``invalidOrInaccessibleIssueCount``). Bulk notifications
are off (``sendBulkNotification: false``): no watcher gets an e-mail per issue.

It needs the global Bulk Change permission, and Data Center has no REST bulk edit:
:meth:`BulkEditor.unavailable` says why it cannot be used (Data Center, or a submit Jira
refused as a whole: :meth:`BulkEditor.refuse`), and the caller then writes one
``PUT /issue/{key}`` per issue. A run does not read the permission first (that would cost
a call every cycle that writes): a user without it gets the submit refused (403) and the
rest of the run goes by PUT. ``check --online`` reads it (:meth:`BulkEditor.permission`)
and says so up front.

A submit is retried like any idempotent write (the client's retries, then ours for the
5xx it gives up on): a bulk edit of labels and a text field applied twice leaves the
issues as once, so a second task after a dropped answer does no harm.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote as quote_path

from connectors.exceptions import ConnectorError, RemoteError
from connectors.jira.errors import read_json
from connectors.jira.settings import SIDE

if TYPE_CHECKING:
    from connectors.jira.connector import JiraConnector

#: Issues one bulk edit may select (the reference: "a maximum of 1000 issues").
MAX_ISSUES: Final = 1000
#: The single-line text custom field: the only flag-field type bulk edit sets by value
#: (a select field takes an option id, which the sync does not know).
TEXT_FIELD_TYPE: Final = "com.atlassian.jira.plugin.system.customfieldtypes:textfield"
#: Task states after which nothing more happens.
FINISHED: Final = frozenset({"COMPLETE", "FAILED", "CANCELLED", "DEAD"})
#: Waits between progress reads: 0.5 s, doubling, at most 10 s between two.
FIRST_POLL_WAIT: Final = 0.5
MAX_POLL_WAIT: Final = 10.0
#: How long one push waits for a task before it leaves it to the next cycle.
MAX_TASK_WAIT: Final = 600.0


@dataclass(frozen=True, slots=True)
class BulkEdit:
    """One change made to every issue of a bulk edit: labels added or removed (one of the
    two: Jira takes one labels option a request) and a text field set (None clears)."""

    add_labels: tuple[str, ...] = ()
    remove_labels: tuple[str, ...] = ()
    text_field: tuple[str, str | None] | None = None

    def __post_init__(self) -> None:
        if self.add_labels and self.remove_labels:
            raise ValueError("a bulk edit adds or removes labels, not both")
        if not (self.add_labels or self.remove_labels or self.text_field):
            raise ValueError("a bulk edit must change something")

    def payload(self, refs: Sequence[str]) -> dict[str, Any]:
        """The IssueBulkEditPayload for the issues ``refs`` (ids or keys)."""
        actions: list[str] = []
        edited: dict[str, Any] = {}
        if self.add_labels or self.remove_labels:
            option = "ADD" if self.add_labels else "REMOVE"
            names = self.add_labels or self.remove_labels
            edited["labelsFields"] = [
                {
                    "fieldId": "labels",
                    "bulkEditMultiSelectFieldOption": option,
                    "labels": [{"name": name} for name in names],
                }
            ]
            actions.append("labels")
        if self.text_field is not None:
            field_id, value = self.text_field
            edited["singleLineTextFields"] = [{"fieldId": field_id, "text": value or ""}]
            actions.append(field_id)
        return {
            "selectedIssueIdsOrKeys": list(refs),
            "selectedActions": actions,
            "editedFieldsInput": edited,
            "sendBulkNotification": False,
        }


@dataclass(frozen=True)
class BulkProgress:
    """What a progress read said of one task."""

    task_id: str
    status: str
    #: Issue ids (as text) edited, and those that failed with their reasons.
    processed: frozenset[str] = frozenset()
    failed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    invalid: int = 0

    @property
    def finished(self) -> bool:
        """Whether the task will change nothing more."""
        return self.status in FINISHED

    @property
    def complete(self) -> bool:
        """Whether the task ran (each issue then edited or failed)."""
        return self.status == "COMPLETE"


def _progress(task_id: str, doc: Any) -> BulkProgress:
    if not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
        raise RemoteError(
            f"Jira answered the progress of bulk edit task {task_id} without a status; "
            "the next cycle reads it again",
            side=SIDE,
        )
    failed_doc = doc.get("failedAccessibleIssues") or {}
    failed = {
        str(issue): tuple(str(r) for r in (reasons or ())) or ("no reason given",)
        for issue, reasons in (failed_doc.items() if isinstance(failed_doc, dict) else ())
    }
    processed = frozenset(str(i) for i in doc.get("processedAccessibleIssues") or ())
    invalid = doc.get("invalidOrInaccessibleIssueCount")
    return BulkProgress(
        task_id=task_id,
        status=doc["status"],
        processed=processed - set(failed),
        failed=failed,
        invalid=invalid if isinstance(invalid, int) else 0,
    )


class BulkEditor:
    """Bulk edits of one connector's site."""

    def __init__(
        self,
        jira: JiraConnector,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jira = jira
        self.sleep = sleep
        self.clock = clock
        self._unavailable: str | None = None
        self._checked = False
        #: Progress reads made (for the run summary and tests).
        self.polls = 0

    def unavailable(self) -> str | None:
        """Why bulk edit is not used on this site (None: it is): Data Center has no REST
        bulk edit; Jira refused a submit as a whole (:meth:`refuse`). No call."""
        if not self._checked:
            cloud = self.jira.is_cloud
            self._unavailable = None if cloud else "Jira Data Center/Server has no REST bulk edit"
            self._checked = True
        return self._unavailable

    def permission(self) -> str | None:
        """Why this user cannot bulk edit (None: it can): Data Center, or no global Bulk
        Change permission (one ``GET /mypermissions``; for ``check --online``)."""
        if not self.jira.is_cloud:
            return "Jira Data Center/Server has no REST bulk edit"
        held = self.jira.my_permissions(["BULK_CHANGE"])
        if not held.get("BULK_CHANGE"):
            return (
                "the Jira user lacks the global Bulk Change permission (BULK_CHANGE); a Jira "
                "admin can grant it in Global permissions"
            )
        return None

    def refuse(self, reason: str) -> None:
        """Use no bulk edit any more on this connector (Jira refused one: ``reason``)."""
        self._unavailable, self._checked = reason, True

    def submit(self, edit: BulkEdit, refs: Sequence[str]) -> str:
        """Submit ``edit`` for the issues ``refs`` (ids or keys, at most
        :data:`MAX_ISSUES`); the task id. Raises RemoteError naming Jira's reasons when
        the request is refused as a whole (status 400/403 in ``status``)."""
        if not refs or len(refs) > MAX_ISSUES:
            raise ValueError(f"a bulk edit selects 1 to {MAX_ISSUES} issues, not {len(refs)}")
        jira = self.jira
        url = jira.client.url_v3("bulk/issues/fields")
        data = json.dumps(edit.payload(refs))
        action = f"bulk edit {len(refs)} issue(s)"
        with jira.boundary.guard(action):
            try:
                response = jira.retried_call(lambda: jira.client.post(url, data))
            except ConnectorError:
                raise
            except Exception as exc:  # a refusal as a whole: say Jira's reasons
                refused = _refusal(exc, action, jira.settings.url)
                if refused is None:
                    raise
                raise refused from None
        doc = read_json(response, action, jira.settings.url)
        task = doc.get("taskId") if isinstance(doc, dict) else None
        if not isinstance(task, str | int) or not str(task):
            raise RemoteError(
                f"Jira answered the {action} without a taskId; the issues are written one "
                "by one in the next cycle",
                side=SIDE,
            )
        return str(task)

    def progress(self, task_id: str) -> BulkProgress | None:
        """One progress read; None when Jira does not know the task (404: wrong id, or
        older than the 14 days Jira keeps them)."""
        jira = self.jira
        path = f"bulk/queue/{quote_path(task_id, safe='')}"
        url = jira.client.url_v3(path)
        action = f"read the progress of bulk edit task {task_id}"
        self.polls += 1
        try:
            with jira.boundary.guard(action):
                response = jira.retried_call(lambda: jira.client.get(url))
        except RemoteError as exc:
            if exc.status in (400, 404):
                return None
            raise
        return _progress(task_id, read_json(response, action, jira.settings.url))

    def wait(
        self,
        task_id: str,
        max_wait: float = MAX_TASK_WAIT,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> BulkProgress | None:
        """Read the task's progress until it finished: at once, then after 0.5 s, 1 s,
        2 s ... (at most 10 s between reads), for at most ``max_wait`` seconds or until
        ``should_stop`` (asked between reads); the last progress read (not finished when
        the time ran out), None when Jira does not know it."""
        started = self.clock()
        pause = FIRST_POLL_WAIT
        while True:
            found = self.progress(task_id)
            if found is None or found.finished:
                return found
            left = max_wait - (self.clock() - started)
            if left <= 0 or should_stop():
                return found
            self.sleep(min(pause, left))
            pause = min(pause * 2, MAX_POLL_WAIT)


def bulk_summary(reason: str | None) -> str:
    """What ``check --online`` says of bulk edit, given :meth:`BulkEditor.permission`."""
    if reason is None:
        return (
            "the user may bulk edit: label and flag-field changes shared by many issues "
            "go as bulk edits of up to 1000 issues, without notification e-mails"
        )
    return f"not used: {reason}; the sync writes one PUT per issue instead"


def _refusal(exc: Exception, action: str, url: str) -> RemoteError | None:
    """A RemoteError with Jira's reasons for a 400/403 of the submit (None: not one)."""
    from jira.exceptions import JIRAError

    if not isinstance(exc, JIRAError) or exc.status_code not in (400, 403):
        return None
    reasons: list[str] = []
    body: Any = None
    if exc.response is not None:
        try:
            body = exc.response.json()
        except ValueError:
            body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):  # BulkOperationErrorResponse
            reasons += [str(e.get("message")) for e in errors if isinstance(e, dict)]
        elif isinstance(errors, dict):
            reasons += [f"{k}: {v}" for k, v in errors.items()]
        reasons += [str(m) for m in body.get("errorMessages") or ()]
    reason = "; ".join(r for r in reasons if r) or exc.text or "no reason given"
    return RemoteError(
        f"Jira at {url} refused to {action} (HTTP {exc.status_code}: {reason})",
        side=SIDE,
        status=exc.status_code,
    )
