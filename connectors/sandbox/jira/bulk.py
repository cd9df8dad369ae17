"""Jira Cloud's bulk edit and its task queue: ``POST /rest/api/3/bulk/issues/fields``,
``GET /rest/api/3/bulk/issues/fields`` and ``GET /rest/api/3/bulk/queue/{taskId}``.

The backend part (:class:`BulkQueue`) knows nothing of HTTP; :class:`BulkRoutes` reads
the request and renders the answers in the reference schema's shapes
(IssueBulkEditPayload, SubmittedBulkOperation, BulkOperationProgress,
BulkOperationErrorResponse). Served on Cloud's API v3 only: Data Center has no REST bulk
edit, so a Server sandbox answers 404 there.

What it emulates:

- the global Bulk Change permission (``BULK_CHANGE`` in ``denied_permissions``: 403);
- the limits: at most 1000 issues and 200 fields a request; every edited field listed in
  ``selectedActions`` and every action edited; the payload's properties only (400 for any
  other, as ``additionalProperties: false`` says);
- the labels field (ADD, REMOVE, REPLACE, REMOVE_ALL) and single-line text fields
  (``text: ""`` clears);
- a task that is ENQUEUED when submitted, RUNNING at each poll until it gets through its
  issues (``issues_per_poll`` a poll, 500; ``polls_to_complete`` fixes the number) and
  then COMPLETE (the edits are applied when it completes, as a queued task runs later on
  the real site, each issue's ``updated`` between the submit and then);
  :meth:`BulkQueue.run_all` completes every task at once;
- per-issue failures: an issue of ``refused`` (key -> reason) is listed in
  ``failedAccessibleIssues``; an issue that does not exist (or was deleted meanwhile) is
  counted in ``invalidOrInaccessibleIssueCount``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from connectors.sandbox.http import Router, SandboxRequest, SandboxResponse
from connectors.sandbox.jira.routes import Api

if TYPE_CHECKING:
    from connectors.sandbox.jira.models import JiraBackend

MAX_ISSUES = 1000
MAX_FIELDS = 200
PAYLOAD_KEYS = frozenset(
    {"editedFieldsInput", "selectedActions", "selectedIssueIdsOrKeys", "sendBulkNotification"}
)
#: JiraIssueFields properties (the reference schema); the sandbox edits the first two.
EDITED_KINDS = frozenset(
    {
        "labelsFields", "singleLineTextFields", "cascadingSelectFields",
        "clearableNumberFields", "colorFields", "datePickerFields", "dateTimePickerFields",
        "issueType", "multipleGroupPickerFields", "multipleSelectClearableUserPickerFields",
        "multipleSelectFields", "multipleVersionPickerFields", "multiselectComponents",
        "originalEstimateField", "priority", "richTextFields", "singleGroupPickerFields",
        "singleSelectClearableUserPickerFields", "singleSelectFields",
        "singleVersionPickerFields", "status", "timeTrackingField", "urlFields",
    }
)  # fmt: skip
LABEL_OPTIONS = ("ADD", "REMOVE", "REPLACE", "REMOVE_ALL")
NO_BULK_CHANGE = (
    "You don't have the global Bulk Change permission: ask a Jira admin to grant it, or edit "
    "the issues one at a time."
)
TEXT_FIELD_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:textfield"


class BulkInvalid(ValueError):
    """A payload Jira answers with 400 (one message each)."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


@dataclass
class BulkTask:
    """One submitted bulk edit and its progress."""

    task_id: str
    issue_refs: list[str]
    labels: list[tuple[str, list[str]]]  # (option, names)
    texts: dict[str, str]  # field id -> text ("" clears)
    notify: bool
    created: datetime
    status: str = "ENQUEUED"
    polls: int = 0
    started: datetime | None = None
    updated: datetime | None = None
    processed: list[int] = field(default_factory=list)
    failed: dict[str, list[str]] = field(default_factory=dict)
    invalid: int = 0


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


class BulkQueue:
    """Submitted bulk edits of one backend, and what completing them does."""

    def __init__(self, backend: JiraBackend) -> None:
        self.backend = backend
        #: Issues a task gets through between two progress reads: a task of more needs
        #: more reads (RUNNING until then).
        self.issues_per_poll = 500
        #: Polls every task takes to complete, whatever its size (None: by its size); a
        #: test switch.
        self.polls_to_complete: int | None = None
        #: Issue key -> reason: the issues a bulk edit fails on (a test switch, kept across
        #: resets like ``denied_permissions``).
        self.refused: dict[str, str] = {}
        self.tasks: dict[str, BulkTask] = {}
        self.next_id = 10000
        #: Bulk notification e-mails Jira would have sent (``sendBulkNotification``).
        self.notifications = 0

    def clear(self) -> None:
        """Forget every task (a reset of the world)."""
        self.tasks.clear()

    # -- submitting ---------------------------------------------------------------------

    def submit(self, payload: Any) -> BulkTask:
        """Validate an IssueBulkEditPayload and queue it; BulkInvalid for a 400."""
        if not isinstance(payload, dict):
            raise BulkInvalid("The request body must be a JSON object.")
        unknown = sorted(set(payload) - PAYLOAD_KEYS)
        if unknown:
            raise BulkInvalid(f'Unrecognized field "{unknown[0]}" (not marked as ignorable).')
        missing = [k for k in ("editedFieldsInput", "selectedActions", "selectedIssueIdsOrKeys")]
        missing = [k for k in missing if k not in payload]
        if missing:
            raise BulkInvalid(*(f"{k} is required." for k in missing))
        refs = payload["selectedIssueIdsOrKeys"]
        actions = payload["selectedActions"]
        if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
            raise BulkInvalid("selectedIssueIdsOrKeys must be a list of issue ids or keys.")
        if not refs:
            raise BulkInvalid("Select at least one issue to edit.")
        if len(refs) > MAX_ISSUES:
            raise BulkInvalid(
                f"You can only edit up to {MAX_ISSUES} issues in one request; "
                f"{len(refs)} were selected."
            )
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise BulkInvalid("selectedActions must be a list of field ids.")
        if len(set(actions)) > MAX_FIELDS:
            raise BulkInvalid(f"You can only edit up to {MAX_FIELDS} fields in one request.")
        notify = payload.get("sendBulkNotification", True)
        if notify is not None and not isinstance(notify, bool):
            raise BulkInvalid("sendBulkNotification must be a boolean.")
        labels, texts, edited = self._edited(payload["editedFieldsInput"])
        not_listed = sorted(edited - set(actions))
        if not_listed:
            raise BulkInvalid(
                "The following editedFieldInput values are not listed as selectedActions : "
                + ", ".join(not_listed)
            )
        not_edited = sorted(set(actions) - edited)
        if not_edited:
            raise BulkInvalid(
                "The following selectedActions have no value in editedFieldsInput : "
                + ", ".join(not_edited)
            )
        task = BulkTask(
            task_id=str(self.next_id),
            issue_refs=list(refs),
            labels=labels,
            texts=texts,
            notify=notify is not False,
            created=self.backend.now(),
        )
        self.next_id += 1
        self.tasks[task.task_id] = task
        return task

    def _edited(self, fields: Any) -> tuple[list[tuple[str, list[str]]], dict[str, str], set[str]]:
        if not isinstance(fields, dict):
            raise BulkInvalid("editedFieldsInput must be a JSON object.")
        unknown = sorted(set(fields) - EDITED_KINDS)
        if unknown:
            raise BulkInvalid(f'Unrecognized field "{unknown[0]}" (not marked as ignorable).')
        unsupported = sorted(set(fields) - {"labelsFields", "singleLineTextFields"})
        if unsupported:
            raise BulkInvalid(
                f"The sandbox does not emulate bulk edits of {', '.join(unsupported)} "
                "(labelsFields and singleLineTextFields only)."
            )
        edited: set[str] = set()
        labels: list[tuple[str, list[str]]] = []
        for entry in fields.get("labelsFields") or []:
            if not isinstance(entry, dict):
                raise BulkInvalid("Each labelsFields entry must be an object.")
            field_id, option = entry.get("fieldId"), entry.get("bulkEditMultiSelectFieldOption")
            if field_id != "labels":
                raise BulkInvalid(f"Field '{field_id}' is not a labels field.")
            if option not in LABEL_OPTIONS:
                raise BulkInvalid(
                    f"bulkEditMultiSelectFieldOption must be one of {', '.join(LABEL_OPTIONS)}."
                )
            names = entry.get("labels")
            if not isinstance(names, list):
                raise BulkInvalid("labels is required for a labels field.")
            labels.append((str(option), [self._label(item) for item in names]))
            edited.add("labels")
        texts: dict[str, str] = {}
        for entry in fields.get("singleLineTextFields") or []:
            if not isinstance(entry, dict):
                raise BulkInvalid("Each singleLineTextFields entry must be an object.")
            field_id, text = entry.get("fieldId"), entry.get("text")
            site = self.backend.site_fields.by_id.get(str(field_id))
            if site is None or (site.schema or {}).get("custom") != TEXT_FIELD_TYPE:
                raise BulkInvalid(f"Field '{field_id}' is not a single line text field.")
            if not isinstance(text, str):
                raise BulkInvalid(f"text is required for field '{field_id}'.")
            if len(text) > 255:
                raise BulkInvalid(f"Field '{field_id}' takes up to 255 characters.")
            texts[str(field_id)] = text
            edited.add(str(field_id))
        return labels, texts, edited

    @staticmethod
    def _label(item: Any) -> str:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise BulkInvalid("Each label must be an object with a name.")
        if re.search(r"\s", name):
            raise BulkInvalid(f"The label '{name}' contains spaces which is invalid.")
        if len(name) > 255:
            raise BulkInvalid("The label must not exceed 255 characters.")
        return name

    # -- progress -----------------------------------------------------------------------

    def poll(self, task_id: str) -> BulkTask | None:
        """One progress read: the task moves on (RUNNING, then COMPLETE), None if unknown."""
        task = self.tasks.get(task_id)
        if task is None:
            return None
        if task.status in ("ENQUEUED", "RUNNING"):
            task.polls += 1
            now = self.backend.now()
            needed = self.polls_to_complete or -(-len(task.issue_refs) // self.issues_per_poll)
            if task.polls >= needed:
                self._complete(task)
            elif task.status == "ENQUEUED":
                task.status, task.started, task.updated = "RUNNING", now, now
        return task

    def run_all(self) -> None:
        """Complete every queued task now (the site's queue caught up)."""
        for task in self.tasks.values():
            if task.status in ("ENQUEUED", "RUNNING"):
                self._complete(task)

    def _complete(self, task: BulkTask) -> None:
        """Run the task: each issue edited in turn, its ``updated`` spread between the
        submit and now (a task edits its issues one after another, not all in one
        millisecond)."""
        backend = self.backend
        now = backend.now()
        task.started = task.started or now
        span = max(now - task.created, timedelta(0))
        count = len(task.issue_refs)
        for n, ref in enumerate(task.issue_refs, start=1):
            issue = backend.get_issue(ref)
            if issue is None:
                task.invalid += 1
                continue
            reason = self.refused.get(issue.key)
            if reason is not None:
                task.failed[str(issue.id)] = [reason]
                continue
            labels = list(issue.labels)
            for option, names in task.labels:
                if option == "ADD":
                    labels += [n for n in names if n not in labels]
                elif option == "REMOVE":
                    labels = [x for x in labels if x not in names]
                elif option == "REPLACE":
                    labels = list(dict.fromkeys(names))
                else:
                    labels = []
            issue.labels = labels  # a new list: the backend shares unchanged ones
            for field_id, text in task.texts.items():
                backend.custom_values.setdefault(issue.key, {})[field_id] = text or None
            issue.updated = task.created + span * n / count
            backend.revision += 1
            task.processed.append(issue.id)
        if task.notify and task.processed:
            self.notifications += 1
        task.status, task.updated = "COMPLETE", now

    def progress(self, task: BulkTask) -> dict[str, Any]:
        """The BulkOperationProgress document of a task."""
        total = len(task.issue_refs)
        done = task.status == "COMPLETE"
        percent = 100 if done else (0 if task.status == "ENQUEUED" else 50)
        doc: dict[str, Any] = {
            "taskId": task.task_id,
            "status": task.status,
            "progressPercent": percent,
            "submittedBy": {"accountId": self.backend.me.account_id},
            "created": _ms(task.created),
            "totalIssueCount": total,
        }
        if task.started is not None:
            doc["started"] = _ms(task.started)
        if task.updated is not None:
            doc["updated"] = _ms(task.updated)
        if done:
            doc["processedAccessibleIssues"] = list(task.processed)
            doc["invalidOrInaccessibleIssueCount"] = task.invalid
            if task.failed:
                doc["failedAccessibleIssues"] = dict(task.failed)
        return doc

    def editable_fields(self, refs: list[str]) -> list[dict[str, Any]]:
        """What ``GET /bulk/issues/fields`` lists: labels and the single-line text fields."""
        out: list[dict[str, Any]] = [
            {
                "id": "labels",
                "name": "Labels",
                "type": "labels",
                "isRequired": False,
                "multiSelectFieldOptions": list(LABEL_OPTIONS),
            }
        ]
        for entry in self.backend.site_fields.to_json():
            if (entry.get("schema") or {}).get("custom") == TEXT_FIELD_TYPE:
                out.append(
                    {
                        "id": entry["id"],
                        "name": entry["name"],
                        "type": "textfield",
                        "isRequired": False,
                    }
                )
        return out


def bulk_error(status: int, *messages: str) -> SandboxResponse:
    """BulkOperationErrorResponse: ``{"errors": [{"message": ...}]}``."""
    return SandboxResponse.json({"errors": [{"message": m} for m in messages]}, status=status)


class BulkRoutes(Api):
    """The bulk edit routes (Cloud, API v3)."""

    def register(self, router: Router) -> None:
        """Add the routes (a progress read is a read; a submit, a write)."""
        self.add(router, "POST", "/bulk/issues/fields", self.submit)
        self.add(router, "GET", "/bulk/issues/fields", self.fields)
        self.add(router, "GET", "/bulk/queue/{taskId}", self.progress)

    def _denied(self) -> SandboxResponse | None:
        if "BULK_CHANGE" in self.backend.denied_permissions:
            return bulk_error(403, NO_BULK_CHANGE)
        return None

    def submit(self, request: SandboxRequest) -> SandboxResponse:
        """``POST /bulk/issues/fields``: 201 ``{"taskId"}``."""
        denied = self._denied()
        if denied is not None:
            return denied
        try:
            task = self.backend.bulk.submit(request.json())
        except BulkInvalid as exc:
            return bulk_error(400, *exc.messages)
        except ValueError:
            return bulk_error(400, "The request body is not valid JSON.")
        return SandboxResponse.json({"taskId": task.task_id}, status=201)

    def fields(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /bulk/issues/fields?issueIdsOrKeys=``."""
        denied = self._denied()
        if denied is not None:
            return denied
        refs = [r for r in (request.arg("issueIdsOrKeys") or "").split(",") if r.strip()]
        if not refs:
            return bulk_error(400, "issueIdsOrKeys is required.")
        if not any(self.backend.get_issue(r.strip()) for r in refs):
            return bulk_error(404, "No editable fields were found for the selected issues.")
        return SandboxResponse.json({"fields": self.backend.bulk.editable_fields(refs)})

    def progress(self, request: SandboxRequest) -> SandboxResponse:
        """``GET /bulk/queue/{taskId}``: the task's progress (404 for an unknown task)."""
        denied = self._denied()
        if denied is not None:
            return denied
        task = self.backend.bulk.poll(request.path_params["taskId"])
        if task is None:
            return self.backend.error(404, "The task with the given taskId was not found.")
        return SandboxResponse.json(self.backend.bulk.progress(task))
