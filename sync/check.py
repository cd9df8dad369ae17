"""`check [--online]`: is this config usable, and if not, what to do about it.

Offline, the file itself: it loads (every problem listed, the mapping rules' included),
the schedule parses, CA bundles and secret files are readable (and private), the state
store's location is usable. ``--online`` also signs in to both sides and checks what a
cycle relies on: permissions, projects, every configured field and object, time zone and
API budgets. Each check is one line: a name, ok/warn/fail, and what to do. A failed
check is a config problem (exit 2) or a remote one (exit 3, cannot reach or sign in).
"""

from __future__ import annotations

import os
import re
import ssl
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from connectors.crm import (
    CUSTOMER,
    REPORT,
    Allowance,
    CrmConnector,
    CrmObject,
    Discoverable,
    Needs,
    OneReportPerCustomer,
)
from connectors.discovery import AccessCheck
from connectors.exceptions import ConfigError, ConnectorError
from connectors.jira import DELETE_OWN_COMMENTS, JiraConnector, open_jira
from connectors.jira.bulk import bulk_summary
from connectors.retry import RetryPolicy
from connectors.salesforce.auth import jwt_assertion
from sync.config import (
    Config,
    ConfigFileError,
    find_config,
    load_config,
    secret_file_entries,
    secret_file_path,
)
from sync.exitcodes import ExitCode, exit_for
from sync.remote import (
    build_crm,
    configured_fields,
    confirm_field_ids,
    crm_needs,
    resolve_configured,
)
from sync.schedule import Schedule, ScheduleError

Status = Literal["ok", "warn", "fail"]
Kind = Literal["config", "remote"]

_LABELS = {"ok": "OK", "warn": "WARN", "fail": "FAIL"}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DATE_LITERAL = re.compile(r"\d{4}[-/]\d{1,2}[-/]\d{1,2}")
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "Universal", "Zulu"})
#: What each Jira permission is needed for.
_JIRA_PERMISSIONS = {
    "BROWSE_PROJECTS": "to read the issues",
    "EDIT_ISSUES": "to set the flag label or field",
    "ADD_COMMENTS": "to comment when a customer's level changes",
}


@dataclass(frozen=True)
class Check:
    """One line of the report; ``kind`` says which exit code a failure means."""

    name: str
    status: Status
    detail: str
    kind: Kind = "config"

    def as_dict(self) -> dict[str, str]:
        """The JSON shape of ``check --json``."""
        return {"name": self.name, "status": self.status, "detail": self.detail}

    def line(self) -> str:
        """``OK    name: detail``."""
        return f"{_LABELS[self.status]:<6}{self.name}: {self.detail}"


@dataclass
class CheckReport:
    """Every check that ran, in order."""

    checks: list[Check] = field(default_factory=list)

    def ok(self, name: str, detail: str) -> None:
        """Record a passed check."""
        self.checks.append(Check(name, "ok", detail))

    def warn(self, name: str, detail: str) -> None:
        """Record a warning (never fails the run)."""
        self.checks.append(Check(name, "warn", detail))

    def fail(self, name: str, detail: str, kind: Kind = "config") -> None:
        """Record a failure: a config problem, or a remote one (cannot reach or sign in)."""
        self.checks.append(Check(name, "fail", detail, kind))

    def failed(self, name: str, exc: ConnectorError) -> None:
        """Record a connector error: the config's when :func:`~sync.exitcodes.exit_for`
        makes it a usage error (ConfigError), else the remote's."""
        kind: Kind = "config" if exit_for(exc) == ExitCode.USAGE else "remote"
        self.fail(name, exc.message, kind)

    @property
    def failures(self) -> list[Check]:
        """The failed checks."""
        return [c for c in self.checks if c.status == "fail"]

    @property
    def exit_code(self) -> ExitCode:
        """0 when nothing failed; 2 for any config problem; else 3 (reach or sign in)."""
        failures = self.failures
        if not failures:
            return ExitCode.OK
        if any(c.kind == "config" for c in failures):
            return ExitCode.USAGE
        return ExitCode.REMOTE

    def summary(self) -> str:
        """The one line a failed check run ends with (stderr)."""
        failures = self.failures
        return (
            f"{len(failures)} check(s) failed, first {failures[0].name}; do what the FAIL "
            "line(s) say, then run `jira-crm-sync check` again"
            if failures
            else "every check passed"
        )

    def as_dict(self) -> dict[str, Any]:
        """The document ``check --json`` prints."""
        return {"ok": not self.failures, "checks": [c.as_dict() for c in self.checks]}


def run_checks(explicit: Path | None, *, online: bool) -> CheckReport:
    """Every check for the config at ``explicit`` (or the one found the usual way)."""
    report = CheckReport()
    try:
        path = find_config(explicit)
    except ConfigFileError as exc:
        for problem in exc.problems:
            report.fail("config", problem)
        return report
    if path.is_file():
        _private(report, "config file", path)
    try:
        config = load_config(path)
    except ConfigFileError as exc:
        for problem in exc.problems:
            report.fail("config", problem)
        return report
    report.ok("config", f"{path} loads; every key is valid")
    _secret_files(report, path, config)
    unusable_ca = _ca_bundles(report, config)
    _schedule(report, config)
    _labels(report, config)
    used = _state(report, config, online)
    if online:  # a side whose CA bundle failed above cannot be reached: skip it
        if "jira" not in unusable_ca:
            _jira(report, config, used.get("jira"))
        if f"crm.{config.crm.kind}" not in unusable_ca:
            _crm(report, config, used.get(config.crm.side))
    return report


# -- offline ------------------------------------------------------------------------------


def _private(report: CheckReport, what: str, path: Path) -> None:
    """Warn when a file holding secrets can be read (or changed) by other users."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return
    if mode & 0o077:
        report.warn(
            f"{what} permissions",
            f"{path} is open to other users (mode {mode:04o}); run chmod 600 {path}",
        )


def _expand(value: str) -> str:
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(0)), value)


def _secret_files(report: CheckReport, path: Path, config: Config) -> None:
    """Modes of the ``*_file`` secrets (already read by the loader) and the JWT key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        raw = {}
    for section, key, where in secret_file_entries(raw):
        value = section[f"{key}_file"]
        if isinstance(value, str):
            _private(report, where, secret_file_path(_expand(value), path.parent))
    sf = config.crm.salesforce
    if sf is None or sf.auth != "jwt" or not sf.private_key_file:
        return
    name = "crm.salesforce.private_key_file"
    try:
        jwt_assertion(config.salesforce_settings())
    except ConfigError as exc:
        report.fail(name, exc.message)
        return
    report.ok(name, f"{sf.private_key_file} holds a usable RSA private key")
    _private(report, name, Path(sf.private_key_file))


def _crm_ca_bundle(config: Config) -> str:
    crm = config.crm
    section = crm.hubspot if crm.kind == "hubspot" else crm.salesforce
    return section.ca_bundle if section is not None else ""


def _ca_bundles(report: CheckReport, config: Config) -> set[str]:
    """Check each configured CA bundle loads; returns the sections whose bundle does not."""
    unusable: set[str] = set()
    for section, bundle in (
        ("jira", config.jira.ca_bundle),
        (f"crm.{config.crm.kind}", _crm_ca_bundle(config)),
    ):
        name = f"{section}.ca_bundle"
        if not bundle:
            continue
        where = Path(bundle)
        fix = (
            f"set [{section}] ca_bundle to the PEM file of the CA that signed the site's "
            "certificate, or to an empty string for the system store"
        )
        try:
            if where.is_dir():
                ssl.create_default_context(capath=str(where))
            else:
                ssl.create_default_context(cafile=str(where))
        except FileNotFoundError:
            report.fail(name, f"{bundle} does not exist; {fix}")
        except ssl.SSLError:
            report.fail(name, f"{bundle} holds no PEM certificate; {fix}")
        except OSError as exc:
            report.fail(name, f"cannot read {bundle} ({exc.strerror}); {fix}")
        else:
            report.ok(name, f"{bundle} is a readable CA bundle")
            continue
        unusable.add(section)
    return unusable


def _schedule(report: CheckReport, config: Config) -> None:
    try:
        schedule = Schedule.parse(config.schedule.every)
    except ScheduleError as exc:
        report.fail("schedule", f"{exc}; fix it in the config")
        return
    kind = "every" if schedule.interval is not None else "cron (UTC)"
    report.ok("schedule", f"{kind} {schedule.text}")


def _labels(report: CheckReport, config: Config) -> None:
    """Jira labels cannot hold spaces and are at most 255 characters."""
    wanted = [("push.jira.label", config.push.jira.label)]
    wanted += [("progress.blocked_labels", label) for label in config.progress.blocked_labels]
    bad = [(key, label) for key, label in wanted if not label or re.search(r"\s", label)]
    bad += [(key, label) for key, label in wanted if len(label) > 255]
    if bad:
        for key, label in bad:
            report.fail(
                "jira labels",
                f"{key} {label!r} is not a Jira label: labels are 1 to 255 characters "
                "without spaces; use e.g. customer-at-risk",
            )
        return
    report.ok("jira labels", f"{config.push.jira.label} is a valid Jira label")


def _state(report: CheckReport, config: Config, online: bool) -> dict[str, int]:
    """Where the state store lives; online, its schema and today's API calls per side."""
    from sync.store.db import default_url, driver_problem, sqlite_path

    url = config.state.url or default_url()
    name = "state store"
    fix = "set [state] url to a sqlite:/// path or a postgresql+psycopg:// URL"
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        report.fail(name, f"[state] url is not a database URL; {fix}")
        return {}
    backend = parsed.get_backend_name()
    shown = parsed.render_as_string(hide_password=True)
    if backend not in ("sqlite", "postgresql"):
        report.fail(name, f"{shown} is not supported; {fix}")
        return {}
    missing_driver = driver_problem(parsed)
    if missing_driver is not None:
        report.fail(name, missing_driver)
        return {}
    path = sqlite_path(parsed)
    if path is not None and not _sqlite_place_usable(report, path):
        return {}
    if path is not None:  # it holds customer names, scores and cases
        for part in (path, *(Path(f"{path}{end}") for end in ("-wal", "-shm", "-journal"))):
            if part.exists():
                _private(report, name, part)
    if path is not None and not path.exists():
        report.ok(name, f"SQLite file {path} does not exist yet; the first run creates it")
        return {}
    if not online:
        where = f"SQLite file {path}" if path else shown
        more = "" if path else "; --online connects to it"
        report.ok(name, f"{where}{more}")
        return {}
    return _state_online(report, url, shown, ("jira", config.crm.side))


def _sqlite_place_usable(report: CheckReport, path: Path) -> bool:
    fix = "set [state] url to a writable location, or fix the permissions"
    if path.exists():
        if not path.is_file() or not os.access(path, os.R_OK | os.W_OK):
            report.fail("state store", f"{path} is not a readable, writable file; {fix}")
            return False
        if not os.access(path.parent, os.W_OK | os.X_OK):
            report.fail("state store", f"{path.parent} is not writable (SQLite needs it); {fix}")
            return False
        return True
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        report.fail("state store", f"cannot create {path}: {existing} is not writable; {fix}")
        return False
    return True


def _state_online(
    report: CheckReport, url: str, shown: str, sides: tuple[str, str]
) -> dict[str, int]:
    from sync.store import StoreError, current_revision, head_revision, repo
    from sync.store.db import create_engine

    name = "state store"
    try:
        engine = create_engine(url)
    except StoreError as exc:
        report.fail(name, str(exc))
        return {}
    try:
        with engine.connect() as conn:
            revision = current_revision(engine)
            head = head_revision()
            if revision is None:
                report.ok(name, f"{shown} is empty; the first run creates the schema")
                return {}
            if revision != head:
                report.fail(
                    name,
                    f"{shown} is at schema {revision}, this version needs {head}; "
                    "run `jira-crm-sync db upgrade`",
                )
                return {}
            day = datetime.now(UTC).date()
            used = {side: repo.calls_today(conn, side, day) for side in sides}
        report.ok(name, f"{shown} is reachable, schema {revision}")
        return used
    except sa.exc.DBAPIError as exc:
        detail = " ".join(str(exc.orig if exc.orig is not None else exc).split())[:300]
        report.fail(
            name,
            f"cannot use {shown} ({detail}); check [state] url and that the database is up",
        )
        return {}
    finally:
        engine.dispose()


# -- online: Jira -------------------------------------------------------------------------


@contextmanager
def _guard(report: CheckReport, name: str) -> Iterator[list[bool]]:
    """Record a connector error as the failure of check ``name``; yields [passed]."""
    passed = [True]
    try:
        yield passed
    except ConnectorError as exc:
        passed[0] = False
        report.failed(name, exc)


def _jira(report: CheckReport, config: Config, used_today: int | None) -> None:
    jira = open_jira(config.jira_settings())
    try:
        with _guard(report, "jira login") as passed:
            facts = jira.connect()
        if not passed[0]:
            return  # the other Jira checks need a login
        who = config.jira.email or facts.display_name or facts.user
        version = ".".join(str(v) for v in facts.version)
        report.ok("jira login", f"{who} on {facts.base_url} (Jira {facts.deployment} {version})")
        _jira_time_zone(report, config, facts.time_zone)
        _jira_projects(report, config, jira)
        _jira_fields(report, config, jira)
        with _guard(report, "jira bulk edit"):  # bulk edit, or one PUT per issue
            why = jira.bulk.permission()
            (report.warn if why else report.ok)("jira bulk edit", bulk_summary(why))
        _suggest_jira(report, config, jira)
    finally:
        jira.close()
    _jira_budget(report, config, used_today)


def _jira_time_zone(report: CheckReport, config: Config, zone: str) -> None:
    if zone in _UTC_NAMES:
        report.ok("jira time zone", f"{zone}: JQL dates read as UTC")
        return
    detail = (
        f"{zone}, not UTC: Jira reads zone-less JQL dates in it; the sync's own searches "
        "use epoch milliseconds, so only dates in [jira] jql are affected"
    )
    if _DATE_LITERAL.search(config.jira.jql):
        report.warn(
            "jira time zone", f"{detail}: the dates in [jira] jql are read in {zone}, not UTC"
        )
    else:
        report.ok("jira time zone", detail)


def _needed_permissions(config: Config) -> list[str]:
    needed = ["BROWSE_PROJECTS", "EDIT_ISSUES"]
    if config.push.jira.comment_on_change:
        needed.append("ADD_COMMENTS")
    return needed


def _jira_projects(report: CheckReport, config: Config, jira: JiraConnector) -> None:
    needed = _needed_permissions(config)
    # Only reconcile --apply needs it (to delete a flag comment posted twice): a warning.
    wanted = [DELETE_OWN_COMMENTS] if config.push.jira.comment_on_change else []
    contexts: Sequence[str | None] = config.jira.projects or [None]
    for project in contexts:
        name = f"jira project {project}" if project else "jira permissions"
        with _guard(report, name):
            held = jira.my_permissions([*needed, *wanted], project)
            missing = [key for key in needed if not held.get(key)]
            if missing:
                why = "; ".join(f"{key} {_JIRA_PERMISSIONS[key]}" for key in missing)
                report.fail(
                    name,
                    f"the user lacks {', '.join(missing)} ({why}); ask a Jira admin to grant "
                    "them to it in the project's permission scheme",
                    "remote",
                )
            elif any(not held.get(key) for key in wanted):
                report.warn(
                    name,
                    f"found; the user has {', '.join(needed)} but not {DELETE_OWN_COMMENTS}: "
                    "`reconcile --apply` cannot delete a flag comment posted twice (it "
                    "reports it); a Jira admin can grant it in the project's permission scheme",
                )
            else:
                report.ok(name, f"found; the user has {', '.join([*needed, *wanted])}")
    with _guard(report, "jira scope"):
        if jira.scope_has_issues():
            report.ok("jira scope", "the search of [jira] projects and jql finds issues")
        else:
            report.warn(
                "jira scope",
                "no issue matches [jira] projects and jql; check the keys and the clause",
            )


def _jira_fields(report: CheckReport, config: Config, jira: JiraConnector) -> None:
    """Every field name a cycle resolves, resolved as a cycle does (one list, and
    sync.remote.confirm_field_ids: /field read once more before a name is called
    missing); a /field answer that is not a field list fails as a remote problem."""
    # A field that does not resolve even then is reported below, under its config key.
    with _guard(report, "jira field list") as passed, suppress(ConfigError):
        confirm_field_ids(jira, config)
    if not passed[0]:
        return
    catalog = jira.field_catalog()
    for what, (setting, ref) in configured_fields(config).items():
        name = f"jira field {ref}"
        with _guard(report, name):
            found = resolve_configured(catalog, what, setting, ref)
            report.ok(name, f"{setting} resolves to {found}")
    # Found by its type, so a localised or duplicated name cannot lose the epics unseen.
    epic = catalog.epic_link()
    report.ok(
        "jira epic link",
        "the site has no Epic Link field: epics are read from each issue's parent"
        if epic is None
        else f"epics are read from each issue's parent and from {catalog.describe(epic)}",
    )


def _add_hints(report: CheckReport, roles: dict[str, str], hints: dict[str, str]) -> None:
    """Append each hint to the failed check it belongs to (``roles``: check name -> role)."""
    for index, check in enumerate(report.checks):
        hint = hints.get(roles.get(check.name, "")) if check.status == "fail" else None
        if hint:
            report.checks[index] = replace(check, detail=f"{check.detail}; {hint}")


def _failed_roles(report: CheckReport, roles: dict[str, str]) -> set[str]:
    return {roles[c.name] for c in report.failures if c.name in roles}


def _suggest_jira(report: CheckReport, config: Config, jira: JiraConnector) -> None:
    """When a configured Jira field failed, add what discovery finds for it (one sampled
    search; nothing when every field resolved). A failure of the hint's own calls is not
    a check: the FAIL line stands as it is."""
    roles = {
        f"jira field {ref}": what for what, (_setting, ref) in configured_fields(config).items()
    }
    wanted = _failed_roles(report, roles)
    if not wanted:
        return
    from sync.discover import jira_hints

    # Built only to recognise customer ids as the configured CRM writes them (no call); a
    # CRM setting that fails is the CRM check's to report, and leaves the link hint out.
    try:
        crm: CrmConnector | None = build_crm(config)
    except ConfigError:
        crm = None
    try:
        with suppress(ConnectorError):
            _add_hints(report, roles, jira_hints(jira, wanted, crm))
    finally:
        if crm is not None:
            crm.close()


def _suggest_crm(report: CheckReport, config: Config, crm: CrmConnector, needs: Needs) -> None:
    """When a configured CRM field or object failed, add what discovery finds for it: one
    sampled customer query, and the custom objects' describes when an object failed
    (nothing when every name resolved)."""
    customer, survey, push = needs.customer, needs.survey, needs.report
    streams = crm.streams(needs)
    field_of = f"{crm.side} field {streams[CUSTOMER]}"
    roles = {
        f"{field_of}.{customer.segment.name}": "segment",
        f"{field_of}.{config.link.crm_field}": "crm_link",
        f"{crm.side} object {push.object.name}": "report",
        f"{crm.side} field {push.object.name}.{push.external_id.name}": "external_id",
    }
    if customer.satisfaction is not None:
        roles[f"{field_of}.{customer.satisfaction.name}"] = "satisfaction"
    if survey is not None:
        roles[f"{crm.side} object {survey.object.name}"] = "survey"
    wanted = _failed_roles(report, roles)
    if not wanted:
        return
    from sync.discover import crm_hints

    with suppress(ConnectorError):
        projects = config.jira.projects
        hints = crm_hints(crm, wanted, projects, config.push.crm.fields or None, push.object.name)
        _add_hints(report, roles, hints)


def _jira_budget(report: CheckReport, config: Config, used_today: int | None) -> None:
    limits = config.limits
    used = "no run recorded yet" if used_today is None else f"{used_today:,} used today (UTC)"
    detail = (
        f"Jira reports no budget; [limits] allows {limits.jira_calls_per_cycle:,} calls a "
        f"cycle and {limits.jira_calls_per_day:,} a day; {used}"
    )
    if used_today is not None and used_today >= limits.jira_calls_per_day:
        report.warn(
            "jira API budget",
            f"{detail}: spent, so cycles skip Jira until tomorrow (UTC) unless you raise "
            "[limits] jira_calls_per_day",
        )
    else:
        report.ok("jira API budget", detail)


# -- online: the CRM ------------------------------------------------------------------------


def _crm(report: CheckReport, config: Config, used_today: int | None) -> None:
    # One quick retry, not a cycle's minutes of back-off: a person is waiting.
    crm = build_crm(config, retry=RetryPolicy(attempts=2, initial_wait=0.5))
    needs = crm_needs(config)
    login = f"{crm.side} login"
    try:
        with _guard(report, login) as passed:
            crm.connect()
            allowance = crm.allowance()  # also proves a session-token login works
        if not passed[0]:
            return  # the other CRM checks need a login
        sf, hs = config.crm.salesforce, config.crm.hubspot
        if sf is not None:
            who = f" as {sf.username}" if sf.username else ""
            report.ok(login, f"{sf.auth}{who} on {crm.instance_url}")
        elif hs is not None:
            report.ok(login, f"{hs.auth} on {crm.instance_url}")
        _crm_access(report, config, crm, needs)
        customers = crm.streams(needs)[CUSTOMER]
        for target in crm.objects(needs):
            _crm_object(report, crm, target, customers)
        _suggest_crm(report, config, crm, needs)
        _crm_budget(report, config, crm.side, allowance, used_today)
    finally:
        crm.close()


def _crm_access(report: CheckReport, config: Config, crm: CrmConnector, needs: Needs) -> None:
    """What the CRM's sign-in may not do (a HubSpot token's scopes), each with the fix:
    one cheap call per need, nothing written. A CRM whose sign-in carries no such list
    (Salesforce: its field checks below name what the user cannot see) adds no line."""
    side = crm.discovery() if isinstance(crm, Discoverable) else None
    if not isinstance(side, AccessCheck):
        return
    name = f"{crm.side} scopes"
    with _guard(report, name) as passed:
        made, lacking = side.missing_access(needs, upload=config.report.upload)
    if not passed[0]:
        return
    for lack in lacking:
        report.fail(f"{crm.side} {lack.name}", lack.detail, "remote")
    if not lacking:
        report.ok(
            name, f"the token holds every scope a cycle uses ({made} call(s), nothing written)"
        )


def _crm_object(report: CheckReport, crm: CrmConnector, target: CrmObject, customers: str) -> None:
    name = f"{crm.side} object {target.name}"
    with _guard(report, name) as passed:
        problems = crm.check_object(target)
        folded = (
            target.kind == REPORT
            and target.name.lower() != customers.lower()
            and isinstance(crm, OneReportPerCustomer)
            and crm.one_report_per_customer(target.name)
        )
    if not passed[0]:
        return
    count = len(target.fields)
    failing = f"; {len(problems)} of its {count} configured field(s) fail" if problems else ""
    if folded:
        # Not what the config names: say where the reports go (a custom object may be
        # missing, or hidden from the app), rather than "found".
        report.warn(
            name,
            f"not found (or not visible to the app): the reports go into the customer "
            f"records themselves ({customers}), one report a customer (its main "
            f"project's){failing}; create the object or let the app read it, or set "
            f'{target.setting} = "{customers}" to say so',
        )
    elif problems:
        report.ok(name, f"found{failing}")
    else:
        report.ok(name, f"found, with all {count} configured field(s)")
    for problem in problems:
        report.fail(f"{crm.side} field {target.name}.{problem.field}", problem.problem)


def _crm_budget(
    report: CheckReport, config: Config, side: str, allowance: Allowance, used_today: int | None
) -> None:
    name = f"{side} API budget"
    ours = config.limits
    used = "no run recorded yet" if used_today is None else f"{used_today:,} used today (UTC)"
    allowed = (
        f"[limits] lets this tool use {ours.crm_calls_per_cycle:,} a cycle and "
        f"{ours.crm_calls_per_day:,} a day; {used}"
    )
    remaining, most = allowance.remaining, allowance.total
    if remaining is None or most is None:
        report.warn(name, f"{allowance.holder} did not report {allowance.source}; {allowed}")
        return
    detail = f"{remaining:,} of {allowance.holder}'s {most:,} daily API calls left; {allowed}"
    if remaining < ours.crm_calls_per_cycle:
        report.warn(
            name,
            f"{detail}: fewer left than a cycle may use, so cycles may stop early; wait for "
            "the rolling 24 hours, or lower [limits] crm_calls_per_cycle",
        )
    elif used_today is not None and used_today >= ours.crm_calls_per_day:
        report.warn(
            name, f"{detail}: this tool's own daily budget is spent; raise crm_calls_per_day"
        )
    else:
        report.ok(name, detail)
