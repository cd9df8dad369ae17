"""The HubSpot sandbox on its own: one portal from a world, served over HTTPS on loopback
or in-process, with what ``jira-crm-sync sandbox --crm hubspot`` prints and writes.

Not part of :class:`connectors.sandbox.stack.Sandbox` (its credentials, endpoints and
ready line are Jira-and-Salesforce shaped): ``sandbox --crm hubspot`` (sync/cli/sandbox.py)
serves this beside the stack, from the same world and CA, and
:func:`connectors.sandbox.config_file.hubspot_config_text` writes the config.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from connectors.sandbox.app import SandboxApp
from connectors.sandbox.hubspot.models import HubSpotBackend
from connectors.sandbox.hubspot.schema import CUSTOM_NAME
from connectors.sandbox.hubspot.transport import IN_PROCESS_URL, InProcessTransport
from connectors.sandbox.server import HttpsServer, Tls, make_tls
from connectors.sandbox.world import World

#: The [push.crm.fields] of the sandbox portal's custom object (model name -> property).
REPORT_FIELDS: dict[str, str] = {
    "account": "company_id",
    "project_key": "jira_project_key",
    "issues_total": "issues_total",
    "issues_done": "issues_done",
    "issues_in_progress": "issues_in_progress",
    "issues_to_do": "issues_to_do",
    "issues_overdue": "issues_overdue",
    "percent_complete": "percent_complete",
    "health": "health",
    "health_reasons": "health_reasons",
    "next_milestone": "next_milestone",
    "next_milestone_date": "next_milestone_date",
    "forecast_date": "forecast_date",
    "summary": "summary",
    "last_synced": "last_synced",
}


class HubSpotSandbox:
    """A seeded portal behind the emulated HubSpot API, with fresh secrets."""

    def __init__(self, world: World, *, latency_ms: int = 0, seed: int = 0, **backend: Any) -> None:
        self.private_app_token = "pat-na1-" + secrets.token_hex(16)
        self.client_id = secrets.token_hex(8)
        self.client_secret = secrets.token_hex(16)
        self.refresh_token = "na1-" + secrets.token_hex(24)
        self.backend = HubSpotBackend(
            world,
            private_app_token=self.private_app_token,
            client_id=self.client_id,
            client_secret=self.client_secret,
            refresh_token=self.refresh_token,
            **backend,
        )
        self.app = SandboxApp(self.backend, latency_ms=latency_ms, seed=seed)
        self._server: HttpsServer | None = None
        self.url: str | None = None
        self.ca_bundle: Path | None = None

    def in_process(self) -> InProcessTransport:
        """An httpx transport answering ``IN_PROCESS_URL`` from this portal."""
        self.url = IN_PROCESS_URL
        return InProcessTransport(self.app)

    def serve(
        self, tls_dir: Path, host: str = "127.0.0.1", port: int = 0, tls: Tls | None = None
    ) -> str:
        """Serve over HTTPS on loopback; the base URL (:meth:`stop` ends it)."""
        tls = tls or make_tls(tls_dir)
        self._server = HttpsServer(self.app, tls, host, port).start()
        self.url, self.ca_bundle = self._server.url, tls.ca_path
        return self.url

    def stop(self) -> None:
        """Stop the HTTPS server, if any."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def ready_document(self) -> dict[str, Any]:
        """The HubSpot keys of the sandbox command's ready line."""
        if self.url is None:
            raise RuntimeError("the HubSpot sandbox is not serving")
        return {
            "hubspot_url": self.url,
            "hubspot_token": self.private_app_token,
            "hubspot_client_id": self.client_id,
            "hubspot_client_secret": self.client_secret,
            "hubspot_refresh_token": self.refresh_token,
            "ca_bundle": str(self.ca_bundle) if self.ca_bundle else None,
        }

    def config_text(self) -> str:
        """The ``[crm]``/``[crm.hubspot]`` sections and the HubSpot names of the neutral
        ones (customer fields, project-keys link field, survey, report object) for a
        config pointing here: the sections of :mod:`sync.config`, to complete with
        ``[state]`` and ``[jira]``."""
        if self.url is None:
            raise RuntimeError("the HubSpot sandbox is not serving")

        def s(value: str) -> str:
            return json.dumps(value, ensure_ascii=False)

        fields = "\n".join(f"{model} = {s(prop)}" for model, prop in REPORT_FIELDS.items())
        return f"""\
[crm]
kind = "hubspot"

[crm.hubspot]
auth = "private_app"
base_url = {s(self.url)}
access_token = {s(self.private_app_token)}
ca_bundle = {s(str(self.ca_bundle) if self.ca_bundle else "")}
portal_id = 4400100
escalation = "priority"
survey_types = ["NPS"]

[crm.hubspot.company]
segment_field = "customer_group"
satisfaction_field = "csat_score"

[link]
crm_field = "jira_project_keys"

[satisfaction.survey]
object = "feedback_submissions"
account_field = "company"
score_field = "hs_response_value"
date_field = "hs_submission_timestamp"

[push.crm]
object = {s(CUSTOM_NAME)}
external_id_field = "jira_sync_key"

[push.crm.fields]
{fields}
"""
