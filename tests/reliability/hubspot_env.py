"""The HubSpot side of the reliability suite: a Jira sandbox and a HubSpot sandbox portal
of one world, both served over HTTPS, a ``[crm] kind = "hubspot"`` config pointing at
them, the real CLI (in this process, or as a child a :class:`HubKillSwitch` can SIGKILL
from inside the portal), and what the sync owns on the portal as a comparable value.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from connectors.sandbox.config_file import write_hubspot_config
from connectors.sandbox.hubspot.schema import CUSTOM_TYPE_ID, STANDARD_TYPES
from connectors.sandbox.hubspot.standalone import HubSpotSandbox
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cli import app as cli_app
from sync.config import load_config
from sync.store import Store, open_store
from tests.sync.e2e import CLI, KillPoint, KillSwitch

COMPANIES = STANDARD_TYPES["companies"]
NOTES = STANDARD_TYPES["notes"]
#: Stats keys of the portal's endpoints.
SEARCH = "POST /crm/v3/objects/{type}/search"
UPSERT = "POST /crm/v3/objects/{type}/batch/upsert"
ASSOCIATE = "POST /crm/v4/associations/{from}/{to}/batch/associate/default"
UPLOAD = "POST /files/v3/files"
NOTE = "POST /crm/v3/objects/{type}"
#: Report properties that change every run (not compared).
VOLATILE = frozenset({"last_synced", "hs_lastmodifieddate", "hs_createdate", "hs_object_id"})
#: ``HubEnv.edit_config(*UPLOAD_REPORTS)``: attach each company's HTML report as a note.
UPLOAD_REPORTS = ("upload = false", "upload = true")


class HubEnv:
    """A Jira sandbox and a HubSpot portal serving (served here unless ``tls`` is None:
    then both already serve), a HubSpot config on ``store_url``."""

    def __init__(
        self, box: Sandbox, hub: HubSpotSandbox, directory: Path, store_url: str, tls: Tls | None
    ) -> None:
        self.box, self.hub = box, hub
        self._serving = tls is not None
        if tls is not None:
            box.serve(directory, tls=tls)
            hub.serve(directory, tls=tls)
        self.config_path = directory / "jira-crm-sync.toml"
        write_hubspot_config(box, hub, self.config_path, store_url)
        self.store_url = store_url
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.store_url)
        return self._store

    def edit_config(self, old: str, new: str) -> None:
        """Replace one exact fragment of the config file (it must be there once)."""
        text = self.config_path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not once in the config"
        self.config_path.write_text(text.replace(old, new), encoding="utf-8")
        load_config(self.config_path)

    def cli_args(self, *args: str) -> list[str]:
        return [str(CLI), "--config", str(self.config_path), *args]

    def cli(self, *args: str) -> tuple[int, str, str]:
        """``jira-crm-sync --config <config> <args>`` in this process: (exit, out, err)."""
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            result = CliRunner().invoke(cli_app, ["--config", str(self.config_path), *args])
        finally:  # the CLI points the root logger at its own (captured) stderr
            root.handlers[:], root.level = handlers, level
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._serving:
            self.hub.stop()
            self.box.stop()


def fresh(box: Sandbox, hub: HubSpotSandbox) -> None:
    """Both sandboxes back at their seeded world, no fault, stats zeroed."""
    for app in (box.jira_app, hub.app):
        with app.lock:
            app.backend.reset()
        app.faults.clear()
        app.stats.reset()


def hub_calls(hub: HubSpotSandbox) -> dict[str, int]:
    """Calls the portal answered by endpoint since its stats were reset."""
    return dict(hub.app.stats.snapshot()["by_endpoint"])


@dataclass(frozen=True)
class PortalState:
    """What the sync owns on the portal and in Jira, comparable between two runs."""

    #: jira_sync_key -> the report's properties (without the volatile ones).
    reports: dict[str, tuple[tuple[str, str], ...]]
    #: Report records per sync key (more than one: written twice).
    report_copies: dict[str, int]
    #: jira_sync_key -> the companies the report is associated to.
    report_companies: dict[str, frozenset[str]]
    #: company id -> titles of the notes on it carrying a file.
    notes: dict[str, tuple[str, ...]]
    #: Jira issue key -> its sorted labels.
    labels: dict[str, tuple[str, ...]]
    #: Jira issue key -> its comment bodies, oldest first.
    comments: dict[str, tuple[str, ...]]

    def differences(self, other: PortalState) -> list[str]:
        return [
            name
            for name in (
                "reports",
                "report_copies",
                "report_companies",
                "notes",
                "labels",
                "comments",
            )
            if getattr(self, name) != getattr(other, name)
        ]


def portal_state(box: Sandbox, hub: HubSpotSandbox) -> PortalState:
    """The portal's report records, their associations and notes; Jira's labels and
    comments."""
    backend = hub.backend
    reports: dict[str, tuple[tuple[str, str], ...]] = {}
    copies: dict[str, int] = {}
    companies: dict[str, frozenset[str]] = {}
    for record in backend.records[CUSTOM_TYPE_ID].values():
        if record.archived_ms is not None:
            continue
        key = str(record.properties.get("jira_sync_key"))
        copies[key] = copies.get(key, 0) + 1
        reports[key] = tuple(
            sorted((k, str(v)) for k, v in record.properties.items() if k not in VOLATILE)
        )
        companies[key] = frozenset(backend.associated(CUSTOM_TYPE_ID, record.id, COMPANIES))
    notes: dict[str, list[str]] = {}
    for note in backend.records.get(NOTES, {}).values():
        if note.archived_ms is not None or not note.properties.get("hs_attachment_ids"):
            continue
        for company in backend.associated(NOTES, note.id, COMPANIES):
            notes.setdefault(company, []).append(str(note.properties.get("hs_note_body")))
    jira = box.jira
    return PortalState(
        reports,
        copies,
        companies,
        {k: tuple(sorted(v)) for k, v in notes.items()},
        {key: tuple(sorted(i.labels)) for key, i in jira.issues.items() if i.labels},
        {
            key: tuple(json.dumps(c.body, sort_keys=True) for c in comments)
            for key, comments in jira.comments.items()
            if comments
        },
    )


# --- killing the CLI from inside the portal ------------------------------------------------

#: A kill point of a HubSpot run: tests/sync/e2e.py ``KillPoint`` with side "jira" or
#: "hubspot" (its ``endpoint`` a stats key of that app).
HubKillPoint = KillPoint


def hub_kill_switch(box: Sandbox, hub: HubSpotSandbox) -> KillSwitch:
    """tests/sync/e2e.py ``KillSwitch`` over the Jira app and the portal's."""
    return KillSwitch(box, crm_app=hub.app, crm_side="hubspot")
