"""Loading and validating the config file (SPEC section 5).

TOML in, a validated :class:`Config` out, or a :class:`ConfigFileError` that lists every
problem at once, each with its key path and the fix. ``${ENV}`` is expanded in every
string; ``*_file`` keys read a secret from a file. Secret values are ``SecretStr``: they
never appear in a repr, a log line or an error message.

The config is modelled once, here: :meth:`Config.mapping_rules` builds the mapping layer's
plain :class:`~mappings.rules.Rules` from it, and every value those rules cannot use is
refused by this model's validators.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from connectors.exceptions import ConfigError
from connectors.hubspot.settings import HubSpotSettings
from connectors.jira.settings import JiraSettings
from connectors.salesforce.settings import SalesforceSettings
from mappings.model import FlagLevel, LinkRule, Measure
from mappings.rules import (
    CRM_FIELD_NAMES,
    DEFAULT_CRM_FIELDS,
    CrmPushRules,
    FieldIds,
    HealthRules,
    JiraPushRules,
    LinkRules,
    ProgressRules,
    Rules,
    SatisfactionRules,
    SurveyRules,
)

DEFAULT_CONFIG_NAME = "jira-crm-sync.toml"
CONFIG_ENV = "JIRA_CRM_SYNC_CONFIG"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Largest config file read: a real one is a few KiB; this bounds a wrong path's harm.
MAX_CONFIG_BYTES = 1024 * 1024
#: Largest secret (``*_file``) or JWT private key file read.
MAX_SECRET_BYTES = 64 * 1024
#: Longest string a key may hold; ``[jira] jql`` has its own bound (connectors.jql_clause).
MAX_VALUE_CHARS = 4096
#: Deepest nesting of tables and arrays; the deepest real key is four levels down.
MAX_NESTING = 8
_BOM = b"\xef\xbb\xbf"


class ConfigFileError(Exception):
    """The config could not be loaded; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the config:\n{listing}")


def _https_only(value: str, carried: str) -> str:
    """``value`` when it is an https:// URL; the message never echoes it (it may hold
    user:password@)."""
    if value[:7].lower() == "http://":
        raise ValueError(
            f"starts with http://: {carried} would travel in clear text; write https://"
        )
    if not re.match(r"https://[^/\s]+", value, re.IGNORECASE):
        raise ValueError("must be an https:// URL (the site's address, like https://host)")
    return value


#: Said after a value the mapping rules cannot use (see :func:`_refused`).
_RULE_FIX = "fix that key (config.example.toml documents it)"


def _refused(message: str, key: str = "") -> PydanticCustomError:
    """A value the mapping rules cannot use, raised by a validator. The error's location is
    the field (or, from a model validator, the section) validated; ``key`` extends it for a
    check across keys (``"fields.mood"`` under ``push.crm``)."""
    return PydanticCustomError("config_rule", "{message}", {"key": key, "message": message})


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StateConfig(_Section):
    url: str | None = None


class JiraConfig(_Section):
    url: str
    deployment: Literal["auto", "cloud", "server"] = "auto"
    email: str | None = None
    api_token: SecretStr | None = None
    personal_access_token: SecretStr | None = None
    ca_bundle: str = ""
    projects: list[str] = Field(default_factory=list)
    jql: str = ""
    max_retries: int = Field(default=3, ge=0, le=10)
    timeout_seconds: float = Field(default=30, gt=0)
    #: How far back each incremental pull re-reads, for issues Jira's search index had not
    #: taken in yet when the last pull read (connectors/jira/paging.py IssueCursor).
    overlap_seconds: int = Field(default=300, ge=0, le=3600)

    @field_validator("url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        return _https_only(value, "the API token").rstrip("/")


class AccountFieldsConfig(_Section):
    segment_field: str = "Segment__c"
    satisfaction_field: str = "CSAT__c"


class SalesforceConfig(_Section):
    auth: Literal["password", "oauth_password", "jwt", "client_credentials", "session"]
    login_url: str = "https://login.salesforce.com"
    instance_url: str = ""
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    private_key_file: str | None = None
    access_token: SecretStr | None = None
    api_version: str = "59.0"
    ca_bundle: str = ""
    timeout_seconds: float = Field(default=60, gt=0)
    account: AccountFieldsConfig = Field(default_factory=AccountFieldsConfig)
    #: A push of more report records than this upserts through Bulk API 2.0 jobs.
    bulk_threshold: int = 2000
    #: Collections (200 records each) in flight at once below the threshold.
    parallel_writes: int = 4
    #: Share of the org's daily API limit left to its other integrations.
    daily_reserve_percent: float = 5.0

    @field_validator("bulk_threshold", mode="before")
    @classmethod
    def _threshold(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _refused(
                f"must be a whole number of records, at least 1 (got {value!r}; default 2000): "
                "a push of more report records than this goes through Bulk API 2.0 jobs, "
                "fewer go in collections of 200"
            )
        return value

    @field_validator("parallel_writes", mode="before")
    @classmethod
    def _parallel(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
            raise _refused(
                f"must be a whole number from 1 to 10 (got {value!r}; default 4): the "
                "collection requests kept in flight at once (Salesforce allows 25 long "
                "requests per org at a time; leave room for its other integrations)"
            )
        return value

    @field_validator("daily_reserve_percent", mode="before")
    @classmethod
    def _reserve(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 100:
            raise _refused(
                f"must be a number from 0 up to (not including) 100 (got {value!r}; default 5): "
                "the share of the org's daily API limit left to its other integrations"
            )
        return value

    @field_validator("login_url", "instance_url")
    @classmethod
    def _https_urls(cls, value: str) -> str:
        return _https_only(value, "the password, keys and session") if value else value

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not re.fullmatch(r"\d{2,3}\.0", value):
            raise ValueError('must look like "59.0" (no leading v)')
        return value


class CompanyFieldsConfig(_Section):
    """The company properties a HubSpot cycle reads besides name and owner."""

    segment_field: str = "customer_group"
    satisfaction_field: str = "csat_score"


class HubSpotConfig(_Section):
    """``[crm.hubspot]``: how to reach and sign in to one portal, and what to read there."""

    auth: Literal["private_app", "oauth"] = "private_app"
    base_url: str = "https://api.hubapi.com"
    access_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    ca_bundle: str = ""
    #: The portal (hub) id, for links to records; unset, it is read when connecting.
    portal_id: int | None = Field(default=None, gt=0)
    timeout_seconds: float = Field(default=60, gt=0)
    #: Seconds of ``hs_lastmodifieddate`` re-read each pull (HubSpot's search index lags).
    overlap_seconds: int = Field(default=300, ge=0, le=3600)
    #: Archived (deleted) records are listed at most this often.
    deletes_every_seconds: int = Field(default=3600, ge=0)
    escalation: Literal["priority", "property"] = "priority"
    escalation_property: str | None = None
    survey_types: list[str] = Field(default_factory=lambda: ["NPS"])
    company: CompanyFieldsConfig = Field(default_factory=CompanyFieldsConfig)

    @field_validator("base_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        return _https_only(value, "the access token").rstrip("/")


#: Each ``[crm] kind``: its name as people read it, and whose daily API limit it keeps.
#: Each CRM as people read it, whose daily limit it keeps, and when that limit frees calls.
CRM_NAMES: dict[str, tuple[str, str, str]] = {
    "salesforce": ("Salesforce", "the org", "its limit is a rolling 24 hours"),
    "hubspot": ("HubSpot", "the portal", "its daily limit resets at midnight, portal time"),
}


class CrmConfig(_Section):
    kind: Literal["salesforce", "hubspot"] = "salesforce"
    salesforce: SalesforceConfig | None = None
    hubspot: HubSpotConfig | None = None

    @model_validator(mode="after")
    def _kind_has_section(self) -> CrmConfig:
        if getattr(self, self.kind) is None:
            raise _refused(
                f"[crm] kind = {self.kind!r} needs a [crm.{self.kind}] section", self.kind
            )
        other = "hubspot" if self.kind == "salesforce" else "salesforce"
        if getattr(self, other) is not None:
            raise _refused(
                f"[crm] kind = {self.kind!r} reads no [crm.{other}]; remove that section "
                f"or set kind = {other!r}",
                other,
            )
        return self

    @property
    def side(self) -> str:
        """The CRM side's name in the state store, call meters, counts and messages: the
        configured kind (``salesforce``, ``hubspot``), as the connector's ``side``."""
        return self.kind

    @property
    def name(self) -> str:
        """The CRM's name as people read it (``Salesforce``, ``HubSpot``)."""
        return CRM_NAMES.get(self.kind, (self.kind, "", ""))[0]

    @property
    def instance_url(self) -> str:
        """The base of links to CRM records as configured ('' when the sign-in gives it:
        always for HubSpot, whose links name the portal id the sign-in reads)."""
        return self.salesforce.instance_url if self.salesforce is not None else ""

    @property
    def sf(self) -> SalesforceConfig:
        """``[crm.salesforce]``; ConfigError when the config's CRM is another one."""
        if self.salesforce is None:
            raise ConfigError(f"[crm] kind = {self.kind!r}: this needs a Salesforce org")
        return self.salesforce


class LinkConfig(_Section):
    order: tuple[LinkRule, ...] = (
        "jira_field",
        "crm_field",
        "static",
    )
    jira_field: str = "Salesforce Account"
    crm_field: str = "Jira_Project_Key__c"
    inherit_from_epic: bool = True
    static: dict[str, str | list[str]] = Field(default_factory=dict)

    @field_validator("order")
    @classmethod
    def _some_rule(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # An empty order would leave every work item unlinked, silently.
        if not value:
            raise ValueError(
                'must name at least one rule, e.g. ["jira_field", "crm_field", "static"]'
            )
        if len(set(value)) != len(value):
            raise _refused("a rule is repeated")
        return value


class HealthConfig(_Section):
    amber_overdue_ratio: float = Field(default=0.10, ge=0, le=1)
    red_overdue_ratio: float = Field(default=0.25, ge=0, le=1)
    amber_blocked_ratio: float = Field(default=0.10, ge=0, le=1)
    red_blocked_ratio: float = Field(default=0.25, ge=0, le=1)
    red_forecast_slip_days: int = Field(default=14, ge=0)

    @field_validator("red_forecast_slip_days")
    @classmethod
    def _slip_after_amber(cls, value: int) -> int:
        # amber_forecast_slip_days is no config key: the rules' default (any slip) applies.
        if value < HealthRules().amber_forecast_slip_days:
            raise _refused("must be >= amber_forecast_slip_days >= 0")
        return value

    @model_validator(mode="after")
    def _amber_before_red(self) -> HealthConfig:
        for name in ("overdue", "blocked"):
            if getattr(self, f"amber_{name}_ratio") > getattr(self, f"red_{name}_ratio"):
                raise _refused("need 0 <= amber <= red <= 1", name)
        return self


class ProgressConfig(_Section):
    measure: Measure = "count"
    story_points_field: str = "Story Points"
    blocked_statuses: list[str] = Field(default_factory=lambda: ["Blocked"])
    blocked_labels: list[str] = Field(default_factory=lambda: ["blocked"])
    forecast_weeks: int = Field(default=6, ge=1, le=52)
    health: HealthConfig = Field(default_factory=HealthConfig)


class SurveyConfig(_Section):
    object: str = "Survey_Response__c"
    account_field: str = "Account__c"
    score_field: str = "Score__c"
    date_field: str = "Responded_At__c"
    window_days: int = Field(default=90, ge=1)
    aggregate: Literal["mean", "latest"] = "mean"


class SatisfactionConfig(_Section):
    source: Literal["account_field", "survey"] = "account_field"
    scale: int = Field(default=5, ge=1, le=100)
    at_risk_below: float = 3.5
    watch_below: float = 4.0
    escalated_cases_at_risk: int = Field(default=1, ge=0)
    survey: SurveyConfig = Field(default_factory=SurveyConfig)

    @model_validator(mode="after")
    def _at_risk_below_watch(self) -> SatisfactionConfig:
        if self.at_risk_below > self.watch_below:
            raise _refused("must not exceed watch_below", "at_risk_below")
        return self


class PushCrmConfig(_Section):
    object: str = "Jira_Project_Status__c"
    external_id_field: str = "Jira_Sync_Key__c"
    fields: dict[str, str] = Field(default_factory=dict)

    @property
    def mapped_fields(self) -> tuple[tuple[str, str], ...]:
        """(unified-model name, CRM field) pairs written, in config order; the default map
        when [push.crm.fields] is absent or empty."""
        return tuple(self.fields.items()) or DEFAULT_CRM_FIELDS

    @model_validator(mode="after")
    def _mappable(self) -> PushCrmConfig:
        mapped = self.mapped_fields
        for name, crm_name in mapped:
            if name not in CRM_FIELD_NAMES:
                raise _refused(
                    f"unknown model name; use one of {', '.join(CRM_FIELD_NAMES)}",
                    f"fields.{name}",
                )
            if not crm_name:
                raise _refused("needs a CRM field name", f"fields.{name}")
        crm_names = [crm_name for _, crm_name in mapped]
        if len(set(crm_names)) != len(crm_names):
            raise _refused("a CRM field repeats", "fields")
        if self.external_id_field in crm_names:
            raise _refused(
                "is set by the sync; do not map it in push.crm.fields", "external_id_field"
            )
        return self


class PushJiraConfig(_Section):
    issues: Literal["open", "epics", "all"] = "open"
    label: str = "customer-at-risk"
    label_levels: tuple[FlagLevel, ...] = ("at_risk",)
    field: str = ""
    comment_on_change: bool = True
    comment_on: Literal["epics", "all"] = "epics"
    comment_on_first_sight: bool = False
    policy: Literal["enforce", "respect"] = "enforce"

    @field_validator("label")
    @classmethod
    def _one_word(cls, value: str) -> str:
        if " " in value:
            raise _refused("Jira labels cannot contain spaces")
        return value


class PushConfig(_Section):
    crm: PushCrmConfig = Field(default_factory=PushCrmConfig)
    jira: PushJiraConfig = Field(default_factory=PushJiraConfig)


class ScheduleConfig(_Section):
    every: str = "15m"


class ServeConfig(_Section):
    listen: str = "127.0.0.1:9465"
    lease_seconds: int = Field(default=300, ge=2, le=86400)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        parse_listen(value)
        return value


def parse_listen(listen: str) -> tuple[str, int]:
    """``(host, port)`` of a ``[serve] listen`` value: ``host:port`` or ``[v6]:port``;
    raises ValueError saying how to write it."""
    how = "write host:port, like 127.0.0.1:9465 ([::1]:9465 for IPv6, 0.0.0.0:9465 for all)"
    host, colon, port = listen.rpartition(":")
    if not colon or not host:
        raise ValueError(f"is not host:port; {how}")
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ValueError(f"has no port from 1 to 65535 after the last colon; {how}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"holds no IPv6 address between [ and ]; {how}") from None
        return host[1:-1], int(port)
    if ":" in host:
        raise ValueError(f"has an IPv6 address without brackets; {how}")
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?", host):
        raise ValueError(f"has no valid host name or address before the port; {how}")
    return host, int(port)


class LimitsConfig(_Section):
    jira_calls_per_cycle: int = Field(default=2000, ge=1)
    jira_calls_per_day: int = Field(default=50000, ge=1)
    crm_calls_per_cycle: int = Field(default=1000, ge=1)
    crm_calls_per_day: int = Field(default=15000, ge=1)


#: Placeholders a [report] title may use.
REPORT_TITLE_FIELDS = ("period", "customer", "account_id")


class ReportConfig(_Section):
    upload: bool = False
    period: Literal["daily", "weekly", "monthly"] = "weekly"
    title: str = "Progress report {period}"

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        import string

        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError:
            raise ValueError("unbalanced { or }; write {period} and {customer}") from None
        unknown = sorted(names - set(REPORT_TITLE_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{unknown[0]}}}; use {{period}}, {{customer}}, "
                "{account_id}"
            )
        if "period" not in names:
            raise ValueError("must contain {period}: the upload is found again by its title")
        return value


class Config(_Section):
    """The whole validated config."""

    state: StateConfig = Field(default_factory=StateConfig)
    jira: JiraConfig
    crm: CrmConfig
    link: LinkConfig = Field(default_factory=LinkConfig)
    progress: ProgressConfig = Field(default_factory=ProgressConfig)
    satisfaction: SatisfactionConfig = Field(default_factory=SatisfactionConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    def jira_settings(self) -> JiraSettings:
        """What the Jira connector needs (raises ConfigError on inconsistent credentials)."""
        jira = self.jira
        return JiraSettings(
            url=jira.url,
            deployment=jira.deployment,
            email=jira.email,
            api_token=_reveal(jira.api_token),
            personal_access_token=_reveal(jira.personal_access_token),
            ca_bundle=jira.ca_bundle or None,
            projects=tuple(jira.projects),
            jql=jira.jql or None,
            max_retries=jira.max_retries,
            timeout_seconds=jira.timeout_seconds,
            overlap_seconds=jira.overlap_seconds,
        )

    def salesforce_settings(self) -> SalesforceSettings:
        """What the Salesforce connector needs (raises ConfigError when auth lacks a key,
        or the config's CRM is not Salesforce)."""
        sf = self.crm.sf
        settings = SalesforceSettings(
            auth=sf.auth,
            login_url=sf.login_url,
            instance_url=sf.instance_url or None,
            username=sf.username,
            password=_reveal(sf.password),
            security_token=_reveal(sf.security_token),
            consumer_key=_reveal(sf.consumer_key),
            consumer_secret=_reveal(sf.consumer_secret),
            private_key_file=sf.private_key_file,
            access_token=_reveal(sf.access_token),
            api_version=sf.api_version,
            ca_bundle=sf.ca_bundle or None,
            timeout=sf.timeout_seconds,
            bulk_threshold=sf.bulk_threshold,
            parallel_writes=sf.parallel_writes,
            daily_reserve_percent=float(sf.daily_reserve_percent),
        )
        settings.check()
        return settings

    def hubspot_settings(self) -> HubSpotSettings:
        """What the HubSpot connector needs (raises ConfigError when auth lacks a key, or
        the config's CRM is not HubSpot). Reports name their company and project by the
        properties [push.crm.fields] maps ``account`` and ``project_key`` to."""
        hs = self.crm.hubspot
        if hs is None:
            raise ConfigError(f"[crm] kind = {self.crm.kind!r}: this needs a HubSpot portal")
        mapped = dict(self.push.crm.mapped_fields)
        for name in ("account", "project_key"):
            if name not in mapped:
                raise ConfigError(
                    f"[push.crm.fields] {name} is required with [crm] kind = 'hubspot': "
                    "reports are tied to their company and project by it"
                )
        settings = HubSpotSettings(
            auth=hs.auth,
            base_url=hs.base_url,
            access_token=_reveal(hs.access_token),
            client_id=hs.client_id,
            client_secret=_reveal(hs.client_secret),
            refresh_token=_reveal(hs.refresh_token),
            ca_bundle=hs.ca_bundle or None,
            portal_id=hs.portal_id,
            timeout=hs.timeout_seconds,
            overlap_seconds=hs.overlap_seconds,
            deletes_every_seconds=hs.deletes_every_seconds,
            escalation=hs.escalation,
            escalation_property=hs.escalation_property or None,
            report_object=self.push.crm.object,
            report_company_field=mapped["account"],
            report_project_field=mapped["project_key"],
            survey_types=tuple(hs.survey_types),
        )
        settings.check()
        return settings

    def crm_settings(self) -> SalesforceSettings | HubSpotSettings:
        """The configured CRM's connector settings (ConfigError as each builder says)."""
        if self.crm.kind == "hubspot":
            return self.hubspot_settings()
        return self.salesforce_settings()

    def mapping_rules(self, fields: FieldIds | None = None) -> Rules:
        """The rules the mapping layer applies, from this config: the one place they are
        built. ``fields``: the Jira field ids the connector resolved from the display names
        ([link] jira_field, [progress] story_points_field, [push.jira] field). Rules no key
        names keep the defaults of :mod:`mappings.rules`."""
        link, progress, satisfaction = self.link, self.progress, self.satisfaction
        health, survey = progress.health, satisfaction.survey
        crm, jira = self.push.crm, self.push.jira
        return Rules(
            fields=fields or FieldIds(),
            link=LinkRules(
                order=link.order,
                inherit_from_epic=link.inherit_from_epic,
                static=tuple(
                    sorted(
                        (key.strip().upper(), (ids,) if isinstance(ids, str) else tuple(ids))
                        for key, ids in link.static.items()
                    )
                ),
            ),
            progress=ProgressRules(
                measure=progress.measure,
                blocked_statuses=tuple(progress.blocked_statuses),
                blocked_labels=tuple(progress.blocked_labels),
                forecast_weeks=progress.forecast_weeks,
                health=HealthRules(
                    amber_overdue_ratio=health.amber_overdue_ratio,
                    red_overdue_ratio=health.red_overdue_ratio,
                    amber_blocked_ratio=health.amber_blocked_ratio,
                    red_blocked_ratio=health.red_blocked_ratio,
                    red_forecast_slip_days=health.red_forecast_slip_days,
                ),
            ),
            satisfaction=SatisfactionRules(
                source=satisfaction.source,
                scale=satisfaction.scale,
                at_risk_below=satisfaction.at_risk_below,
                watch_below=satisfaction.watch_below,
                escalated_cases_at_risk=satisfaction.escalated_cases_at_risk,
                survey=SurveyRules(
                    window_days=survey.window_days,
                    aggregate=survey.aggregate,
                ),
            ),
            crm_push=CrmPushRules(
                object=crm.object,
                external_id_field=crm.external_id_field,
                fields=crm.mapped_fields,
            ),
            jira_push=JiraPushRules(
                issues=jira.issues,
                label=jira.label,
                label_levels=jira.label_levels,
                comment_on_change=jira.comment_on_change,
                comment_on=jira.comment_on,
                comment_on_first_sight=jira.comment_on_first_sight,
                policy=jira.policy,
            ),
        )


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


#: Keys whose value may instead come from ``<key>_file`` (a path to a file holding it).
SECRET_FILE_KEYS = {
    ("jira",): ("api_token", "personal_access_token"),
    ("crm", "salesforce"): (
        "password",
        "security_token",
        "consumer_key",
        "consumer_secret",
        "access_token",
    ),
    ("crm", "hubspot"): ("access_token", "client_secret", "refresh_token"),
}


def find_config(explicit: Path | None, cwd: Path | None = None) -> Path:
    """The config to use: --config, else ./jira-crm-sync.toml, else $JIRA_CRM_SYNC_CONFIG."""
    if explicit is not None:
        return explicit
    local = (cwd or Path.cwd()) / DEFAULT_CONFIG_NAME
    if local.exists():
        return local
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    raise ConfigFileError(
        "config",
        [
            f"no config file: pass --config PATH, create ./{DEFAULT_CONFIG_NAME} "
            f"(jira-crm-sync init writes one), or set ${CONFIG_ENV}"
        ],
    )


def load_config(path: Path, environ: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; every problem is reported at once."""
    env = dict(os.environ if environ is None else environ)
    source = str(path)
    raw = _parse(path)
    problems: list[str] = []
    expanded = _expand(raw, (), env, problems)
    _read_secret_files(expanded, path.parent, problems)
    problems.extend(_long_strings(expanded))
    problems.extend(_unusable_key_file(expanded))
    problems.extend(_missing_ca_bundles(expanded))
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
        raise ConfigFileError(source, problems) from None
    for build in (config.jira_settings, config.crm_settings):
        try:
            build()
        except ConfigError as exc:
            problems.append(exc.message)
    if problems:
        raise ConfigFileError(source, problems)
    return config


class UnreadableFile(Exception):
    """A file the loader will not read; the message says why (no secret in it)."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    Opened without blocking and checked before reading, so a FIFO, a device such as
    /dev/zero or a huge file named by mistake fails at once instead of hanging or
    filling memory. Raises FileNotFoundError, or UnreadableFile naming the problem.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path} ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise UnreadableFile(f"{path} is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise UnreadableFile(f"{path} is not a regular file (a FIFO, device or socket)")
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(fd, min(65536, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {path} ({exc.strerror})") from None
    finally:
        os.close(fd)
    if size > limit:
        raise UnreadableFile(f"{path} is larger than {limit // 1024:,} KiB")
    return b"".join(chunks)


def _parse(path: Path) -> dict[str, Any]:
    """The TOML document at ``path``, or a ConfigFileError naming what is wrong."""
    source = str(path)
    try:
        data = read_regular_file(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ConfigFileError(
            source, [f"{path} does not exist; create it with `jira-crm-sync init`"]
        ) from None
    except UnreadableFile as exc:
        raise ConfigFileError(
            source, [f"{exc}; point --config (or $JIRA_CRM_SYNC_CONFIG) at the TOML config"]
        ) from None
    if data.startswith(_BOM):
        raise ConfigFileError(
            source,
            [f"{path} starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM"],
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            source,
            [f"cannot read {path}: not UTF-8 (byte {exc.start + 1}); save it as UTF-8"],
        ) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(source, [f"not valid TOML: {exc}; fix the syntax there"]) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigFileError(
            source, [f"arrays or tables are nested far too deep; {_NESTING_FIX}"]
        ) from None
    deep = _too_deep(raw)
    if deep is not None:
        raise ConfigFileError(
            source, [f"{deep}: nested more than {MAX_NESTING} levels deep; {_NESTING_FIX}"]
        )
    return raw


_NESTING_FIX = "no key takes more than a list in a table; fix the brackets there"


def _too_deep(raw: dict[str, Any]) -> str | None:
    """The key path of the first value nested deeper than MAX_NESTING (iteratively, so
    depth itself cannot exhaust the stack)."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(raw, ())]
    while stack:
        value, where = stack.pop()
        if len(where) > MAX_NESTING:
            return ".".join(where[:MAX_NESTING])
        if isinstance(value, dict):
            stack.extend((v, (*where, str(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*where, str(i))) for i, v in enumerate(value))
    return None


def _long_strings(raw: Any, where: tuple[str, ...] = ()) -> Iterator[str]:
    """A problem for each string longer than MAX_VALUE_CHARS (``[jira] jql`` excepted:
    its clause check bounds it)."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            yield from _long_strings(value, (*where, str(key)))
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            yield from _long_strings(value, (*where, str(i)))
    elif isinstance(raw, str) and len(raw) > MAX_VALUE_CHARS and where != ("jira", "jql"):
        yield (
            f"{'.'.join(where)}: {len(raw):,} characters, more than the {MAX_VALUE_CHARS:,} "
            "a value may have; check what the key (or its ${VARIABLE}) holds"
        )


def _raw_string(raw: dict[str, Any], *path: str) -> str:
    """The string at ``path`` in the unvalidated document, or "" (absent, or not a string:
    validation says so)."""
    value: Any = raw
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else ""


def _unusable_key_file(raw: dict[str, Any]) -> list[str]:
    """crm.salesforce.private_key_file must be a bounded regular file: it is read at
    every JWT login, where a FIFO would hang and /dev/zero fill memory."""
    value = _raw_string(raw, "crm", "salesforce", "private_key_file")
    if not value:
        return []
    try:
        read_regular_file(Path(value).expanduser(), MAX_SECRET_BYTES)
    except FileNotFoundError:
        return []  # said by the JWT key check, which names the key and the fix
    except UnreadableFile as exc:
        return [
            f"crm.salesforce.private_key_file: {exc}; point it at the PEM file of the "
            "connected app's private key"
        ]
    return []


def _missing_ca_bundles(raw: dict[str, Any]) -> list[str]:
    """A ca_bundle that is not a file would only fail at the first HTTPS call. Read from
    the unvalidated document, so it is said beside any other problem."""
    bundles = (
        ("jira.ca_bundle", _raw_string(raw, "jira", "ca_bundle")),
        ("crm.salesforce.ca_bundle", _raw_string(raw, "crm", "salesforce", "ca_bundle")),
        ("crm.hubspot.ca_bundle", _raw_string(raw, "crm", "hubspot", "ca_bundle")),
    )
    return [
        f"{key}: {path} is not a readable file; point it at the PEM file of the CA that "
        "signed the server's certificate, or remove the key to use the system CAs"
        for key, path in bundles
        if path and not _readable_file(Path(path).expanduser())
    ]


def _readable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def _expand(value: Any, path: tuple[str, ...], env: dict[str, str], problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, (*path, k), env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, str(i)), env, problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    if "${" in _ENV_REF.sub("", value):  # not echoed: the value may be a secret
        problems.append(
            f"{'.'.join(path)}: has a ${{ that is not a whole ${{NAME}} (no closing }}, or a "
            "name other than letters, digits and _); write ${NAME}"
        )

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            problems.append(
                f"{'.'.join(path)}: environment variable {name} is not set; export it "
                "or put the value in the file a *_file key names"
            )
            return ""
        return env[name]

    return _ENV_REF.sub(substitute, value)


def secret_file_entries(raw: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(section, key, dotted ``<key>_file`` name) of each ``*_file`` key set in ``raw``."""
    for section_path, keys in SECRET_FILE_KEYS.items():
        section: Any = raw
        for part in section_path:
            section = section.get(part) if isinstance(section, dict) else None
        if not isinstance(section, dict):
            continue
        for key in keys:
            if f"{key}_file" in section:
                yield section, key, ".".join((*section_path, f"{key}_file"))


def secret_file_path(value: Any, base: Path) -> Path:
    """Where a ``*_file`` value points (relative to the config file's folder)."""
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def _read_secret_files(raw: dict[str, Any], base: Path, problems: list[str]) -> None:
    for section, key, where in list(secret_file_entries(raw)):
        secret_path = secret_file_path(section.pop(f"{key}_file"), base)
        if key in section:
            problems.append(f"{where}: both {key} and {key}_file are set; keep one")
            continue
        value, problem = _read_secret(secret_path)
        if problem is not None:
            problems.append(f"{where}: {problem}")
            # The key is set, only unreadable: a stand-in keeps the credential checks from
            # also calling it missing. The load fails, so the stand-in is never used.
            value = "(unreadable)"
        section[key] = value


def _read_secret(path: Path) -> tuple[str, str | None]:
    """The secret a ``*_file`` holds (stripped), or a problem saying why it cannot be read."""
    fix = "check the path and that this user may read it"
    try:
        data = read_regular_file(path, MAX_SECRET_BYTES)
    except FileNotFoundError as exc:
        return "", f"cannot read {path} ({exc.strerror}); {fix}"
    except UnreadableFile as exc:
        return "", f"{exc}; {fix}"
    if data.startswith(_BOM):
        return "", f"{path} starts with a UTF-8 byte-order mark; save it without BOM"
    try:
        return data.decode("utf-8").strip(), None
    except UnicodeDecodeError:
        return "", f"{path} is not UTF-8 text; save it as UTF-8"


def _describe(error: Any) -> str:
    """One validation error as 'key.path: what is wrong; how to fix'."""
    location = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        section = ".".join(str(part) for part in error["loc"][:-1]) or "the top level"
        return (
            f"{location}: unknown key in {section}{_did_you_mean(error['loc'])}; check its "
            "spelling against config.example.toml or remove it"
        )
    if kind == "missing":
        return f"{location}: required; add it (see config.example.toml)"
    if kind == "config_rule":  # a value the mapping rules cannot use: _refused
        where = ".".join(part for part in (location, error["ctx"]["key"]) if part)
        return f"{where}: {error['ctx']['message']}; {_RULE_FIX}"
    message = error["msg"]
    if kind == "literal_error":  # "Input should be 'a' or 'b'": the fix is in it
        return f"{location}: {message}"
    if kind == "value_error":  # our validators' messages say what to write
        return f"{location}: {message.removeprefix('Value error, ')}"
    # Never echo the offending input: it may be a secret.
    return f"{location}: {message}; fix the value (config.example.toml has a working one)"


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """`` (did you mean x?)`` for a misspelt key, from the keys its section allows."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        # A section that may be absent (``HubSpotConfig | None``) is its model.
        inner = [a for a in (annotation, *get_args(annotation)) if isinstance(a, type)]
        models = [a for a in inner if issubclass(a, BaseModel)]
        if not models:
            return ""
        model = models[0]
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
