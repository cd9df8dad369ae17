"""Building the two connectors from the config, and giving them what earlier runs learned.

Jira's serverInfo, /myself and /field and Salesforce's describes change rarely; they are
cached in the state store (never a secret) so a `run` process does not spend three or
four calls on them every cycle. A field list is cached only once the configured fields
resolve in it: a garbled answer must not turn every run for hours into a config error.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.calls import CallMeter
from connectors.exceptions import ConfigError
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
    "statuscategorychangedate",
)
#: Of those, the ones an older Server lacks: asked for only when the site's field list has
#: them (a search naming a field the site does not have is refused). Without
#: ``statuscategorychangedate`` a done item is dated by ``resolutiondate`` alone.
JIRA_SITE_FIELDS = frozenset({"statuscategorychangedate"})
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
    jira: JiraConnector,
    store: Store,
    now: datetime,
    config: Config,
    *,
    refresh: bool,
    save: bool,
) -> FieldIds:
    """Restore cached facts and fields, or read them, and resolve the configured fields
    (:func:`confirm_field_ids`); what was read is cached unless ``save`` is off, the
    field list only when the configured fields resolve in it. A cached list they do not
    resolve in is read again, and dropped from the cache when the fresh one agrees."""
    restored = False
    if not refresh:
        with store.read() as conn:
            facts = repo.cache_get(conn, "jira:facts", now, METADATA_MAX_AGE)
            fields = repo.cache_get(conn, "jira:fields", now, METADATA_MAX_AGE)
        if facts and fields:
            restored = jira.restore(ServerFacts.from_json(facts), fields)
    facts_read = jira.connect()  # no call when restored
    try:
        ids, reread = confirm_field_ids(jira, config)
    except ConfigError:
        if save and restored:
            with store.transaction() as tx:
                repo.cache_clear(tx, "jira:fields")
        raise
    if save and (not restored or reread):
        with store.transaction() as tx:
            repo.cache_put(tx, "jira:facts", facts_read.to_json(), now)
            repo.cache_put(tx, "jira:fields", jira.field_catalog().fields, now)
    return ids


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


def configured_fields(config: Config) -> dict[str, tuple[str, str]]:
    """The Jira fields the config names, by what they are for (the attribute of
    :class:`FieldIds`): ``(config key, name or id)``. One list for `run` and `check`."""
    named: dict[str, tuple[str, str]] = {}
    if "jira_field" in config.link.order:
        named["account_link"] = ("[link] jira_field", config.link.jira_field)
    if config.progress.measure == "story_points" or config.progress.story_points_field:
        named["story_points"] = (
            "[progress] story_points_field",
            config.progress.story_points_field,
        )
    if config.push.jira.field:
        named["flag_field"] = ("[push.jira] field", config.push.jira.field)
    return named


def resolve_field_ids(jira: JiraConnector, config: Config) -> FieldIds:
    """The configured Jira fields as ids, in the field list the connector holds
    (ConfigError naming a missing or ambiguous one)."""
    catalog = jira.field_catalog()
    ids = {
        what: jira.resolve_field(ref, setting)
        for what, (setting, ref) in configured_fields(config).items()
    }
    epic_ids = [f["id"] for f in catalog.fields if f.get("name") == EPIC_LINK_NAME]
    return FieldIds(
        account_link=ids.get("account_link"),
        story_points=ids.get("story_points"),
        epic_link=epic_ids[0] if len(epic_ids) == 1 else None,
        flag_field=ids.get("flag_field"),
    )


def confirm_field_ids(jira: JiraConnector, config: Config) -> tuple[FieldIds, bool]:
    """:func:`resolve_field_ids`, reading ``GET /field`` once more when a configured field
    does not resolve in the list held (cached, or a garbled answer): ConfigError only when
    the fresh list agrees. Returns the ids and whether the list was read again."""
    try:
        return resolve_field_ids(jira, config), False
    except ConfigError:
        jira.reread_field_catalog()
    return resolve_field_ids(jira, config), True


def jira_fields(ids: FieldIds, site: Container[str]) -> list[str]:
    """Every field id a pull asks for; ``site`` holds the ids of the site's fields (its
    field list), which decides the :data:`JIRA_SITE_FIELDS`."""
    system = [f for f in JIRA_SYSTEM_FIELDS if f not in JIRA_SITE_FIELDS or f in site]
    custom = [ids.account_link, ids.story_points, ids.epic_link, ids.flag_field]
    return list(dict.fromkeys([*system, *(f for f in custom if f)]))
