"""Building the two connectors from the config, and giving them what earlier runs learned.

The CRM is reached through the seam of :mod:`connectors.crm`: :func:`crm_needs` says in
the config's words what a cycle reads and writes there, and the connector turns that
into its own objects and queries.

Jira's serverInfo, /myself and /field and Salesforce's describes change rarely; they are
cached in the state store (never a secret) so a `run` process does not spend three or
four calls on them every cycle. A field list is cached only once the configured fields
resolve in it: a garbled answer must not turn every run for hours into a config error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.calls import CallMeter
from connectors.crm import (
    CASE,
    CUSTOMER,
    REPORT,
    SURVEY,
    Configured,
    CrmConnector,
    CustomerNeed,
    Needs,
    RecordForm,
    ReportNeed,
    SurveyNeed,
)
from connectors.exceptions import ConfigError
from connectors.jira import JiraConnector
from connectors.jira.client import build_client as build_jira_client
from connectors.jira.connector import ServerFacts
from connectors.jira.fields import FieldCatalog
from connectors.jira.settings import jira_meter
from connectors.retry import RetryPolicy
from mappings.rules import FieldIds
from sync.config import AccountFieldsConfig, CompanyFieldsConfig, Config
from sync.store import Store, repo

#: How long cached remote metadata is trusted.
METADATA_MAX_AGE = timedelta(hours=12)

#: Jira fields the model reads, besides the configured custom fields. The connector asks
#: only for those the site lists (an older Server lacks some), and for ``parent``.
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


@dataclass
class Remotes:
    """The two connectors of one process."""

    jira: JiraConnector
    crm: CrmConnector
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
    return Remotes(jira=jira, crm=build_crm(config), jira_meter=meter)


def build_crm(config: Config, *, retry: RetryPolicy | None = None) -> CrmConnector:
    """The connector of the configured CRM (``[crm] kind``), metered; no network call yet
    (``retry``: instead of the cycle's policy, e.g. one quick retry while a person waits).
    Only the configured CRM's connector is imported."""
    kind = config.crm.kind
    if kind == "salesforce":
        from connectors.salesforce.auth import new_meter
        from connectors.salesforce.connector import SalesforceConnector

        return SalesforceConnector(config.salesforce_settings(), meter=new_meter(), retry=retry)
    if kind == "hubspot":
        from connectors.hubspot.connector import HubSpotConnector
        from connectors.hubspot.transport import new_meter as hubspot_meter

        return HubSpotConnector(config.hubspot_settings(), meter=hubspot_meter(), retry=retry)
    raise ConfigError(f"[crm] kind = {kind!r} has no connector")


def crm_form(config: Config) -> RecordForm:
    """How the configured CRM writes what the model reads (its ids, its stored records),
    for code that reads the store without a connector; no call."""
    kind = config.crm.kind
    if kind == "salesforce":
        from connectors.salesforce.records import form as salesforce_form

        return salesforce_form(crm_needs(config))
    if kind == "hubspot":
        from connectors.hubspot import kinds as hubspot_kinds

        return hubspot_kinds.form(crm_needs(config))
    raise ConfigError(f"[crm] kind = {kind!r} has no connector")


def crm_needs(config: Config) -> Needs:
    """What a cycle reads from and writes to the CRM, in the config's words: the
    customer fields the rules read, the survey answers (when satisfaction comes from
    them) and the report object with the fields [push.crm] writes."""
    fields: CompanyFieldsConfig | AccountFieldsConfig
    if config.crm.hubspot is not None:
        fields, where = config.crm.hubspot.company, "[crm.hubspot.company]"
    else:
        fields, where = config.crm.sf.account, "[crm.salesforce.account]"
    satisfaction = None
    if config.satisfaction.source == "account_field":
        satisfaction = Configured(fields.satisfaction_field, f"{where} satisfaction_field")
    project_keys = None
    if "crm_field" in config.link.order:
        project_keys = Configured(config.link.crm_field, "[link] crm_field")
    customer = CustomerNeed(
        Configured(fields.segment_field, f"{where} segment_field"), satisfaction, project_keys
    )
    survey = None
    if config.satisfaction.source == "survey":
        s, at = config.satisfaction.survey, "[satisfaction.survey]"
        survey = SurveyNeed(
            Configured(s.object, f"{at} object"),
            Configured(s.account_field, f"{at} account_field"),
            Configured(s.score_field, f"{at} score_field"),
            Configured(s.date_field, f"{at} date_field"),
        )
    push = config.push.crm
    mapped = push.mapped_fields
    report = ReportNeed(
        Configured(push.object, "[push.crm] object"),
        Configured(push.external_id_field, "[push.crm] external_id_field"),
        tuple(Configured(crm, f"[push.crm.fields] {name}") for name, crm in mapped),
    )
    return Needs(customer, report, survey)


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
    crm: CrmConnector,
    store: Store,
    now: datetime,
    needs: Needs,
    *,
    refresh: bool,
    save: bool,
) -> None:
    """Sign in, and restore cached describes of the objects ``needs`` reads or writes
    (reading those missing)."""
    crm.connect()
    streams = crm.streams(needs)
    objects = [streams[kind] for kind in (CUSTOMER, CASE, REPORT, SURVEY) if kind in streams]
    fresh: dict[str, Any] = {}
    with store.read() as conn:
        for name in objects:
            key = f"{crm.side}:describe:{name}"
            cached = None if refresh else repo.cache_get(conn, key, now, METADATA_MAX_AGE)
            if cached:
                crm.restore_describe(name, cached)
            else:
                fresh[name] = None
    for name in fresh:
        fresh[name] = crm.describe(name)
    if save and fresh:
        with store.transaction() as tx:
            for name, describe in fresh.items():
                repo.cache_put(tx, f"{crm.side}:describe:{name}", describe, now)


def configured_fields(config: Config) -> dict[str, tuple[str, str]]:
    """The Jira fields the configured rules use, by what they are for (the attribute of
    :class:`FieldIds`): ``(config key, name or id)``. One list for `run` and `check`.

    A field the rules do not use is not resolved, so a name the site lacks cannot refuse
    the config: ``story_points_field`` only with ``measure = "story_points"``."""
    named: dict[str, tuple[str, str]] = {}
    if "jira_field" in config.link.order:
        named["account_link"] = ("[link] jira_field", config.link.jira_field)
    if config.progress.measure == "story_points":
        named["story_points"] = (
            "[progress] story_points_field",
            config.progress.story_points_field,
        )
    if config.push.jira.field:
        named["flag_field"] = ("[push.jira] field", config.push.jira.field)
    return named


def resolve_configured(catalog: FieldCatalog, what: str, setting: str, ref: str) -> str:
    """The id of one configured field (``what``: its :func:`configured_fields` key), as a
    run resolves it: story points by :meth:`FieldCatalog.story_points` (a story-points
    type settles a name several fields carry), the others by name or id."""
    if what == "story_points":
        return catalog.story_points(ref, setting)[0]
    return catalog.resolve(ref, setting)


def resolve_field_ids(jira: JiraConnector, config: Config) -> FieldIds:
    """The configured Jira fields as ids, in the field list the connector holds
    (ConfigError naming a missing or ambiguous one), with the fields Jira Software keeps
    epics and story points in, found by type (:mod:`connectors.jira.fields`)."""
    catalog = jira.field_catalog()
    configured = configured_fields(config)
    ids = {
        what: resolve_configured(catalog, what, setting, ref)
        for what, (setting, ref) in configured.items()
    }
    also: tuple[str, ...] = ()
    if "story_points" in ids:
        setting, ref = configured["story_points"]
        also = catalog.story_points(ref, setting)[1]
    return FieldIds(
        account_link=ids.get("account_link"),
        story_points=ids.get("story_points"),
        story_points_also=also,
        epic_link=catalog.epic_link(),
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


def jira_fields(ids: FieldIds) -> list[str]:
    """Every field id a pull asks for (the connector leaves out system fields the site does
    not list: an older Server has no ``statuscategorychangedate``, and a done item there is
    dated by ``resolutiondate`` alone)."""
    custom = [ids.account_link, ids.story_points, *ids.story_points_also, ids.epic_link]
    custom.append(ids.flag_field)
    return list(dict.fromkeys([*JIRA_SYSTEM_FIELDS, *(f for f in custom if f)]))
