"""Building the two connectors from the config, and giving them what earlier runs learned.

Jira's serverInfo, /myself and /field and Salesforce's describes change rarely; they are
cached in the state store (never a secret) so a `run` process does not spend three or
four calls on them every cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.calls import CallMeter
from connectors.jira import JiraConnector
from connectors.jira.connector import ServerFacts
from connectors.jira.settings import build_client as build_jira_client
from connectors.jira.settings import jira_meter
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.auth import new_meter
from mappings.config import FieldIds
from sync.config import Config
from sync.store import Store, repo

#: How long cached remote metadata is trusted.
METADATA_MAX_AGE = timedelta(hours=12)

#: Jira fields the model reads, besides the configured custom fields.
JIRA_SYSTEM_FIELDS = (
    "summary",
    "issuetype",
    "project",
    "status",
    "priority",
    "assignee",
    "created",
    "updated",
    "resolutiondate",
    "duedate",
    "labels",
    "fixVersions",
    "parent",
    "timeoriginalestimate",
    "timeestimate",
)
#: The Server/Data Center "Epic Link" field, read when the site has it.
EPIC_LINK_NAME = "Epic Link"


@dataclass
class Remotes:
    """The two connectors of one process."""

    jira: JiraConnector
    crm: SalesforceConnector
    jira_meter: CallMeter

    @property
    def crm_meter(self) -> CallMeter:
        """The CRM side's call meter."""
        return self.crm.meter


def build_remotes(config: Config) -> Remotes:
    """Connectors for the configured sites, metered; no network call yet."""
    jira_settings = config.jira_settings()
    meter = jira_meter()
    jira = JiraConnector(build_jira_client(jira_settings, meter), jira_settings)
    crm = SalesforceConnector(config.salesforce_settings(), meter=new_meter())
    return Remotes(jira=jira, crm=crm, jira_meter=meter)


def prepare_jira(
    jira: JiraConnector, store: Store, now: datetime, *, refresh: bool, save: bool
) -> None:
    """Restore cached facts and fields, or read them (and cache them unless ``save`` is off)."""
    if not refresh:
        with store.read() as conn:
            facts = repo.cache_get(conn, "jira:facts", now, METADATA_MAX_AGE)
            fields = repo.cache_get(conn, "jira:fields", now, METADATA_MAX_AGE)
        if facts and fields:
            jira.restore(ServerFacts.from_json(facts), fields)
            return
    facts_read = jira.connect()
    catalog = jira.field_catalog()
    if save:
        with store.transaction() as tx:
            repo.cache_put(tx, "jira:facts", facts_read.to_json(), now)
            repo.cache_put(tx, "jira:fields", catalog.fields, now)


def prepare_crm(
    crm: SalesforceConnector,
    store: Store,
    now: datetime,
    objects: Iterable[str],
    *,
    refresh: bool,
    save: bool,
) -> None:
    """Log in, and restore cached describes of ``objects`` (reading those missing)."""
    crm.connect()
    fresh: dict[str, Any] = {}
    with store.read() as conn:
        for sobject in objects:
            cached = (
                None
                if refresh
                else repo.cache_get(conn, f"salesforce:describe:{sobject}", now, METADATA_MAX_AGE)
            )
            if cached:
                crm.restore_describe(sobject, cached)
            else:
                fresh[sobject] = None
    for sobject in fresh:
        fresh[sobject] = crm.describe(sobject)
    if save and fresh:
        with store.transaction() as tx:
            for sobject, describe in fresh.items():
                repo.cache_put(tx, f"salesforce:describe:{sobject}", describe, now)


def resolve_field_ids(jira: JiraConnector, config: Config) -> FieldIds:
    """The configured Jira fields as ids (ConfigError naming a missing or ambiguous one)."""
    catalog = jira.field_catalog()
    link_field = None
    if "jira_field" in config.link.order:
        link_field = jira.resolve_field(config.link.jira_field, "[link] jira_field")
    story_points = None
    if config.progress.measure == "story_points" or config.progress.story_points_field:
        story_points = jira.resolve_field(
            config.progress.story_points_field, "[progress] story_points_field"
        )
    flag_field = None
    if config.push.jira.field:
        flag_field = jira.resolve_field(config.push.jira.field, "[push.jira] field")
    epic_ids = [f["id"] for f in catalog.fields if f.get("name") == EPIC_LINK_NAME]
    return FieldIds(
        account_link=link_field,
        story_points=story_points,
        epic_link=epic_ids[0] if len(epic_ids) == 1 else None,
        flag_field=flag_field,
    )


def jira_fields(ids: FieldIds) -> list[str]:
    """Every field id a pull asks for."""
    custom = [ids.account_link, ids.story_points, ids.epic_link, ids.flag_field]
    return list(dict.fromkeys([*JIRA_SYSTEM_FIELDS, *(f for f in custom if f)]))
