"""`init`: a commented config written from config.example.toml, filled with the answers.

The example's comments are the documentation, so the file is the example with the
answered keys set in place (and credential keys the chosen auth does not use commented
out). Secrets are never asked for and never written: the file names ``${ENV}`` variables,
and :func:`secret_variables` lists them for the user to set. The result is validated with
:func:`sync.config.load_config` before it replaces anything, and written with mode 0600.

``--crm hubspot`` writes ``[crm] kind = "hubspot"``: the example's commented HubSpot
sections instead of the Salesforce ones, and HubSpot's names in the CRM-neutral sections
(:data:`connectors.hubspot.discover.CONFIG_NAMES`).

``--discover`` loads the answers as a config with the secrets from the environment (the
variables the file names, :func:`sign_in_config`), signs in to both sides and lets
:mod:`sync.discover` choose the projects, fields and objects (:func:`discover_sites`);
:func:`render` writes each choice under a comment saying why. Still no secret is written.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa

from connectors.hubspot.discover import CONFIG_NAMES as HUBSPOT_NAMES
from connectors.hubspot.settings import DEFAULT_BASE_URL as HUBSPOT_BASE_URL
from connectors.salesforce.settings import (
    AUTH_KINDS,
    DEFAULT_LOGIN_URL,
    GENERIC_LOGIN_HOSTS,
    AuthKind,
)
from sync.config import Config, ConfigFileError, load_config
from sync.discover.result import printable

if TYPE_CHECKING:
    from sync.discover import Discovery, Project

EXAMPLE_NAME = "config.example.toml"
JiraAuth = Literal["cloud", "server"]
CrmKind = Literal["salesforce", "hubspot"]
HubSpotAuth = Literal["private_app", "oauth"]
CRM_KINDS: tuple[CrmKind, ...] = ("salesforce", "hubspot")
HUBSPOT_AUTH_KINDS: tuple[HubSpotAuth, ...] = ("private_app", "oauth")
#: ``ask(question, default)`` -> the answer; None means no one is there to ask.
Ask = Callable[[str, str | None], str]

#: Credential keys of [crm.salesforce]; those an auth kind does not use are commented out.
_SF_CREDENTIALS = (
    "username",
    "password",
    "password_file",
    "security_token",
    "consumer_key",
    "consumer_secret",
    "private_key_file",
    "access_token",
)
#: Secret key -> (environment variable, what it holds).
_SECRETS: dict[str, tuple[str, str]] = {
    "jira.api_token": ("JIRA_API_TOKEN", "an API token of {email} (id.atlassian.com)"),
    "jira.personal_access_token": (
        "JIRA_PERSONAL_ACCESS_TOKEN",
        "a personal access token (Jira profile > Personal Access Tokens)",
    ),
    "password": ("SALESFORCE_PASSWORD", "the password of {username}"),
    "security_token": ("SALESFORCE_SECURITY_TOKEN", "the security token of {username}"),
    "consumer_key": ("SALESFORCE_CONSUMER_KEY", "the connected app's consumer key"),
    "consumer_secret": ("SALESFORCE_CONSUMER_SECRET", "the connected app's consumer secret"),
    "access_token": ("SALESFORCE_ACCESS_TOKEN", "a session's access token (expires)"),
    "hubspot.access_token": (
        "HUBSPOT_ACCESS_TOKEN",
        "the private app's access token (Settings > Integrations > Private apps)",
    ),
    "hubspot.client_secret": ("HUBSPOT_CLIENT_SECRET", "the OAuth app's client secret"),
    "hubspot.refresh_token": (
        "HUBSPOT_REFRESH_TOKEN",
        "the OAuth app's refresh token for the portal",
    ),
}
#: The HubSpot secrets each auth kind reads.
_HS_SECRETS: dict[str, tuple[str, ...]] = {
    "private_app": ("hubspot.access_token",),
    "oauth": ("hubspot.client_secret", "hubspot.refresh_token"),
}
#: The [crm.hubspot] credential keys; those the auth kind does not use are commented out.
_HS_CREDENTIALS = ("access_token", "client_id", "client_secret", "refresh_token")
#: The Salesforce secrets each auth kind reads.
_SF_SECRETS: dict[str, tuple[str, ...]] = {
    "password": ("password", "security_token"),
    "oauth_password": ("password", "consumer_key", "consumer_secret"),
    "jwt": ("consumer_key",),
    "client_credentials": ("consumer_key", "consumer_secret"),
    "session": ("access_token",),
}
_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,254}")
DEFAULT_KEY_FILE = "/etc/jira-crm-sync/salesforce-jwt.key"
#: Answers a person may get wrong before init gives up on a question.
MAX_TRIES = 3


class InitError(Exception):
    """A value is missing or wrong, or the file may not be written; one line, with the fix."""


@dataclass(frozen=True)
class Answers:
    """Everything ``init`` fills in; no secrets."""

    jira_url: str
    jira_auth: JiraAuth
    jira_email: str | None
    projects: tuple[str, ...]
    salesforce_auth: AuthKind
    salesforce_login_url: str
    salesforce_instance_url: str
    salesforce_username: str | None
    salesforce_private_key_file: str | None
    state_url: str | None
    jira_ca_bundle: str = ""
    salesforce_ca_bundle: str = ""
    #: The CRM: with ``hubspot`` the salesforce_* answers are not used.
    crm: CrmKind = "salesforce"
    hubspot_auth: HubSpotAuth = "private_app"
    hubspot_base_url: str = HUBSPOT_BASE_URL
    hubspot_client_id: str | None = None
    hubspot_ca_bundle: str = ""


def example_text() -> str:
    """config.example.toml as shipped in the package (a link to the top-level file)."""
    return resources.files("sync").joinpath(EXAMPLE_NAME).read_text(encoding="utf-8")


# -- questions ----------------------------------------------------------------------------


def _url(value: str, *, https_only: bool = False) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("https", "http")
    if parts.scheme not in schemes or not parts.netloc:
        raise ValueError("must be a URL like https://example.com")
    return value


def _jira_auth(value: str) -> str:
    value = value.strip().lower()
    if value not in ("cloud", "server"):
        raise ValueError("must be cloud (email + API token) or server (personal access token)")
    return value


def _email(value: str) -> str:
    value = value.strip()
    if "@" not in value:
        raise ValueError("must be an e-mail address")
    return value


def _projects(value: str) -> str:
    keys = [k.strip().upper() for k in re.split(r"[,\s]+", value) if k.strip()]
    bad = [k for k in keys if not _PROJECT_KEY.fullmatch(k)]
    if not keys or bad:
        raise ValueError("must be Jira project keys like APOLLO, ORION (letters, digits, _)")
    return ",".join(keys)


def _salesforce_auth(value: str) -> str:
    value = value.strip()
    if value not in AUTH_KINDS:
        raise ValueError(f"must be one of {', '.join(AUTH_KINDS)}")
    return value


def _crm(value: str) -> str:
    value = value.strip().lower() or "salesforce"
    if value not in CRM_KINDS:
        raise ValueError(f"must be one of {', '.join(CRM_KINDS)}")
    return value


def _hubspot_auth(value: str) -> str:
    value = value.strip()
    if value not in HUBSPOT_AUTH_KINDS:
        raise ValueError(
            "must be private_app (a private app's access token) or oauth (client id, "
            "secret and refresh token)"
        )
    return value


def _my_domain(value: str) -> str:
    url = _url(value, https_only=True)
    if urlsplit(url).netloc.lower() in GENERIC_LOGIN_HOSTS:
        raise ValueError("client_credentials needs your My Domain URL, not " + url)
    return url


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _state_url(value: str) -> str:
    value = value.strip()
    if not value:
        return value  # the default: SQLite in the user's state directory
    try:
        backend = sa.make_url(value).get_backend_name()
    except sa.exc.ArgumentError:
        backend = ""
    if backend not in ("sqlite", "postgresql"):
        raise ValueError("must be a sqlite:///PATH or postgresql+psycopg://... URL, or empty")
    return value


def _ca_bundle(value: str) -> str:
    value = value.strip()
    if value and not Path(value).is_file():
        raise ValueError("must be the path of a PEM file of CA certificates, or empty")
    return value


class _Asker:
    """Takes each value from the flags, else asks (when someone can answer), else uses the
    default; a value that is missing or invalid without anyone to ask is an InitError."""

    def __init__(
        self, given: Mapping[str, str | None], ask: Ask | None, tell: Callable[[str], None]
    ) -> None:
        self.given = given
        self.ask = ask
        self.tell = tell

    def __call__(
        self,
        flag: str,
        question: str,
        check: Callable[[str], str],
        default: str | None = None,
    ) -> str:
        value = self.given.get(flag)
        if value is not None:
            try:
                return check(value)
            except ValueError as exc:
                raise InitError(f"--{flag} {exc}") from None
        if self.ask is None:
            if default is None:
                raise InitError(
                    f"--{flag} is needed ({question[0].lower()}{question[1:]}); pass it, or "
                    "run init at a terminal to be asked"
                )
            return check(default)
        for _ in range(MAX_TRIES):
            try:
                return check(self.ask(question, default))
            except ValueError as exc:
                self.tell(f"{question} {exc}; try again")
        raise InitError(f"no valid answer for --{flag}; pass it as a flag")


def _flag_only(given: Mapping[str, str | None], flag: str, check: Callable[[str], str]) -> str:
    """A value only a flag sets (no question: most sites need none), checked."""
    try:
        return check(given.get(flag) or "")
    except ValueError as exc:
        raise InitError(f"--{flag} {exc}") from None


def collect(
    given: Mapping[str, str | None],
    ask: Ask | None,
    tell: Callable[[str], None] = lambda message: None,
    *,
    discover: bool = False,
) -> Answers:
    """The answers: from ``given`` (flag name -> value), else ``ask``, else defaults;
    ``tell`` shows why an answer was not taken. With ``discover`` the projects are not
    asked here (:func:`choose_projects` asks once the projects in reach are known)."""
    value = _Asker(given, ask, tell)
    jira_url = value("jira-url", "Jira site URL", _url)
    jira_auth = value(
        "jira-auth", "Jira auth: cloud (email + API token) or server (PAT)", _jira_auth, "cloud"
    )
    email = None
    if jira_auth == "cloud":
        email = value("jira-email", "E-mail of the Atlassian account the sync uses", _email)
    if discover:  # asked later, with the projects in reach as the default
        projects = _flag_only(given, "projects", _projects) if given.get("projects") else ""
    else:
        projects = value("projects", "Jira project keys in scope, comma-separated", _projects)
    crm = _flag_only(given, "crm", _crm)
    other = "salesforce" if crm == "hubspot" else "hubspot"
    stray = sorted(flag for flag, v in given.items() if v is not None and flag.startswith(other))
    if stray:
        raise InitError(
            f"--{stray[0]} is for --crm {other}; this config is for {crm}: drop it, or "
            f"pass --crm {other}"
        )
    auth, login_url, instance_url, username, key_file = "jwt", DEFAULT_LOGIN_URL, "", None, None
    hs_auth, hs_url, hs_client = "private_app", HUBSPOT_BASE_URL, None
    if crm == "hubspot":
        hs_auth = value(
            "hubspot-auth",
            "HubSpot auth: private_app (access token) or oauth (client id, secret, refresh token)",
            _hubspot_auth,
            "private_app",
        )
        try:
            hs_url = _url(given.get("hubspot-base-url") or HUBSPOT_BASE_URL, https_only=True)
        except ValueError as exc:
            raise InitError(f"--hubspot-base-url {exc}") from None
        if hs_auth == "oauth":
            hs_client = value("hubspot-client-id", "The OAuth app's client id", _text)
    else:
        auth, login_url, instance_url, username, key_file = _salesforce_answers(value)
    state_url = value(
        "state-url",
        "State store URL (empty: SQLite in the user's state directory)",
        _state_url,
        "",
    )
    return Answers(
        jira_url=jira_url,
        jira_auth="cloud" if jira_auth == "cloud" else "server",
        jira_email=email,
        projects=tuple(projects.split(",")) if projects else (),
        salesforce_auth=next(kind for kind in AUTH_KINDS if kind == auth),
        salesforce_login_url=login_url,
        salesforce_instance_url=instance_url,
        salesforce_username=username,
        salesforce_private_key_file=key_file,
        state_url=state_url or None,
        jira_ca_bundle=_flag_only(given, "jira-ca-bundle", _ca_bundle),
        salesforce_ca_bundle=_flag_only(given, "salesforce-ca-bundle", _ca_bundle),
        crm=next(kind for kind in CRM_KINDS if kind == crm),
        hubspot_auth=next(kind for kind in HUBSPOT_AUTH_KINDS if kind == hs_auth),
        hubspot_base_url=hs_url,
        hubspot_client_id=hs_client,
        hubspot_ca_bundle=_flag_only(given, "hubspot-ca-bundle", _ca_bundle),
    )


def _salesforce_answers(value: _Asker) -> tuple[str, str, str, str | None, str | None]:
    """(auth, login URL, instance URL, username, JWT key file) for [crm.salesforce]."""
    auth = value(
        "salesforce-auth", f"Salesforce auth ({', '.join(AUTH_KINDS)})", _salesforce_auth, "jwt"
    )
    login_url, instance_url = DEFAULT_LOGIN_URL, ""
    if auth == "client_credentials":
        login_url = value(
            "salesforce-login-url",
            "Your org's My Domain URL (https://...my.salesforce.com)",
            _my_domain,
        )
    elif auth == "session":
        instance_url = value(
            "salesforce-instance-url",
            "Salesforce instance URL",
            lambda v: _url(v, https_only=True),
        )
    else:
        login_url = value(
            "salesforce-login-url",
            "Salesforce login URL",
            lambda v: _url(v, https_only=True),
            DEFAULT_LOGIN_URL,
        )
    username = None
    if auth in ("password", "oauth_password", "jwt"):
        username = value("salesforce-username", "Salesforce username of the sync", _text)
    key_file = None
    if auth == "jwt":
        key_file = value(
            "salesforce-private-key-file",
            "Path of the JWT private key (PEM)",
            _text,
            DEFAULT_KEY_FILE,
        )
    return auth, login_url, instance_url, username, key_file


# -- the file -----------------------------------------------------------------------------


def _toml(value: str) -> str:
    """A TOML basic string (JSON string escapes are valid TOML)."""
    return json.dumps(value, ensure_ascii=False)


def _env(name: str) -> str:
    return _toml("${" + name + "}")


class _Lines:
    """The example's lines, edited key by key inside their sections."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _section(self, name: str) -> tuple[int, int]:
        header = f"[{name}]"
        start = next(i for i, line in enumerate(self.lines) if line.strip() == header)
        end = next(
            (
                i
                for i in range(start + 1, len(self.lines))
                if self.lines[i].lstrip().startswith("[")
            ),
            len(self.lines),
        )
        while end > start + 1 and not self.lines[end - 1].strip():
            end -= 1
        return start, end

    def set(self, section: str, key: str, value: str | None, note: str = "") -> None:
        """``key = value`` in ``section`` (uncommenting it, or added at its end); with
        None, an active ``key = ...`` line is commented out. A ``note`` goes above the
        line as a comment (what discovery saw)."""
        start, end = self._section(section)
        pattern = re.compile(rf"^(\s*)(#\s*)?{re.escape(key)}\s*=")
        active = commented = None
        for i in range(start + 1, end):
            found = pattern.match(self.lines[i])
            if found and not found.group(2) and active is None:
                active = i
            elif found and found.group(2) and commented is None:
                commented = i
        if value is None:
            if active is not None:
                self.lines[active] = "# " + self.lines[active]
            return
        line = f"{key} = {value}"
        at = active if active is not None else commented
        if at is None:
            at = end
            self.lines.insert(at, line)
        else:
            self.lines[at] = line
        if note:
            self.lines[at:at] = _comment(f"discovered: {note}")

    def drop(self, section: str) -> None:
        """Remove ``section``: its header and the lines after it, to the first blank one."""
        start = next(i for i, line in enumerate(self.lines) if line.strip() == f"[{section}]")
        end = start + 1
        while end < len(self.lines) and self.lines[end].strip():
            end += 1
        del self.lines[start : end + 1]

    def uncomment(self, header: str) -> None:
        """Uncomment the commented block that starts with ``# header``, to its blank line
        (``# key = ...`` -> ``key = ...``, ``# # note`` -> ``# note``)."""
        start = self.lines.index(f"# {header}")
        end = start
        while end < len(self.lines) and self.lines[end].startswith("#"):
            line = self.lines[end]
            self.lines[end] = "" if line == "#" else line[2:] if line.startswith("# ") else line
            end += 1

    def replace(self, old: str, new: str) -> None:
        """Replace the lines ``old`` (joined by newlines) with ``new``, where they are."""
        wanted = old.split("\n")
        for i in range(len(self.lines) - len(wanted) + 1):
            if self.lines[i : i + len(wanted)] == wanted:
                self.lines[i : i + len(wanted)] = new.split("\n")
                return

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _comment(text: str) -> list[str]:
    """``text`` as comment lines; control characters (a remote's names are in it) cannot
    end the comment and start a TOML line."""
    lines = textwrap.wrap(printable(text), width=88, break_long_words=False, break_on_hyphens=False)
    return ["# " + lines[0], *("#   " + line for line in lines[1:])] if lines else []


def _value(value: str | list[str]) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return _toml(value)


def render(example: str, answers: Answers, discovery: Discovery | None = None) -> str:
    """The config text: ``example`` with the answers filled in and secrets as ``${ENV}``;
    with ``discovery``, the keys it chose too, each under a comment saying why."""
    doc = _Lines(example)
    doc.set("state", "url", _toml(answers.state_url) if answers.state_url else None)
    doc.set("jira", "url", _toml(answers.jira_url))
    doc.set("jira", "deployment", _toml(answers.jira_auth))
    if answers.jira_auth == "cloud":
        doc.set("jira", "email", _toml(answers.jira_email or ""))
        doc.set("jira", "api_token", _env(_SECRETS["jira.api_token"][0]))
    else:
        doc.set("jira", "email", None)
        doc.set("jira", "api_token", None)
        doc.set("jira", "personal_access_token", _env(_SECRETS["jira.personal_access_token"][0]))
    doc.set("jira", "projects", _value(list(answers.projects)))
    doc.set("jira", "ca_bundle", _toml(answers.jira_ca_bundle))
    if answers.crm == "hubspot":
        _render_hubspot(doc, answers)
    else:
        _render_salesforce(doc, answers)
    header = (
        "# Written by `jira-crm-sync init`. Secrets are not in this file: it reads them from\n"
        "# the environment variables named below as ${...} (or use *_file keys).\n"
    )
    if discovery is not None:
        for where, key, value, why in discovery.settings():
            doc.set(where, key, _value(value), why)
        header += (
            '# `init --discover` chose the keys marked "discovered" from what the sites\n'
            "# hold (the comment above each says why); check them.\n"
        )
    header += "# Then run: jira-crm-sync check --online\n#\n"
    return header + doc.text()


def _render_salesforce(doc: _Lines, answers: Answers) -> None:
    section = "crm.salesforce"
    auth = answers.salesforce_auth
    doc.set(section, "auth", _toml(auth))
    doc.set(section, "login_url", _toml(answers.salesforce_login_url))
    doc.set(section, "instance_url", _toml(answers.salesforce_instance_url))
    wanted: dict[str, str] = {key: _env(_SECRETS[key][0]) for key in _SF_SECRETS[auth]}
    if answers.salesforce_username:
        wanted["username"] = _toml(answers.salesforce_username)
    if answers.salesforce_private_key_file:
        wanted["private_key_file"] = _toml(answers.salesforce_private_key_file)
    for key in _SF_CREDENTIALS:
        doc.set(section, key, wanted.get(key))
    doc.set(section, "ca_bundle", _toml(answers.salesforce_ca_bundle))


def _render_hubspot(doc: _Lines, answers: Answers) -> None:
    """[crm] kind = "hubspot": the example's [crm.salesforce] sections go, its commented
    [crm.hubspot] ones are uncommented and filled, and the CRM-neutral sections get
    HubSpot's names (connectors.hubspot.discover.CONFIG_NAMES)."""
    doc.set("crm", "kind", _toml("hubspot"))
    doc.drop("crm.salesforce")
    doc.drop("crm.salesforce.account")
    doc.uncomment("[crm.hubspot]")
    doc.replace(
        '# HubSpot instead of Salesforce: set [crm] kind = "hubspot", remove the two\n'
        "# [crm.salesforce] sections above and uncomment these. Customers are companies, cases",
        "# HubSpot (`init --crm hubspot`). Customers are companies, cases",
    )
    section = "crm.hubspot"
    auth = answers.hubspot_auth
    doc.set(section, "auth", _toml(auth))
    doc.set(section, "base_url", _toml(answers.hubspot_base_url))
    wanted = {key.split(".")[1]: _env(_SECRETS[key][0]) for key in _HS_SECRETS[auth]}
    if answers.hubspot_client_id:
        wanted["client_id"] = _toml(answers.hubspot_client_id)
    for key in _HS_CREDENTIALS:
        doc.set(section, key, wanted.get(key))
    doc.set(section, "ca_bundle", _toml(answers.hubspot_ca_bundle))
    for where, key, value in HUBSPOT_NAMES:
        doc.set(where, key, _toml(value))


def secret_variables(answers: Answers) -> list[tuple[str, str]]:
    """(environment variable, what to put in it) for every secret the config reads."""
    keys = ["jira.api_token" if answers.jira_auth == "cloud" else "jira.personal_access_token"]
    if answers.crm == "hubspot":
        keys += list(_HS_SECRETS[answers.hubspot_auth])
    else:
        keys += list(_SF_SECRETS[answers.salesforce_auth])
    facts = {
        "email": answers.jira_email or "the account",
        "username": answers.salesforce_username or "the user",
    }
    return [(_SECRETS[key][0], _SECRETS[key][1].format(**facts)) for key in keys]


def write_config(path: Path, text: str, variables: list[tuple[str, str]], force: bool) -> None:
    """Validate ``text`` as a config, then write it to ``path`` (mode 0600, atomically).

    InitError when ``path`` exists and ``force`` is off, or cannot be written.
    """
    if path.exists() and not force:
        raise InitError(
            f"{path} exists; pass --force to overwrite it, or --output PATH to write elsewhere"
        )
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=parent, prefix=".jira-crm-sync-", suffix=".toml")
    except OSError as exc:
        raise InitError(
            f"cannot write in {parent} ({exc.strerror}); choose another --output"
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # What the user will run with once the variables are set: it must load.
        load_config(Path(temporary), environ={name: "set-later" for name, _ in variables})
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except ConfigFileError as exc:
        raise RuntimeError(f"init rendered a config that does not load: {exc}") from None
    except OSError as exc:
        raise InitError(f"cannot write {path} ({exc.strerror}); choose another --output") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# -- discovery ----------------------------------------------------------------------------


def choose_projects(
    given: Mapping[str, str | None],
    ask: Ask | None,
    tell: Callable[[str], None],
    in_reach: Sequence[Project],
) -> tuple[str, ...]:
    """The projects in scope: ``--projects`` (each must be in reach), else asked with every
    project in reach as the default, else all of them."""
    keys = [p.key for p in in_reach]
    if not keys:
        raise InitError(
            "the Jira user can browse no project; ask a Jira admin for Browse Projects on "
            "the projects to sync, then run init --discover again"
        )

    def in_scope(value: str) -> str:
        chosen = _projects(value).split(",")
        unknown = [k for k in chosen if k not in keys]
        if unknown:
            raise ValueError(
                f"names {', '.join(unknown)}, which this user cannot browse (in reach: "
                f"{', '.join(keys)})"
            )
        return ",".join(chosen)

    asked = _Asker(given, ask, tell)
    question = "Jira project keys in scope, comma-separated"
    return tuple(asked("projects", question, in_scope, ",".join(keys)).split(","))


def sign_in_config(answers: Answers, environ: Mapping[str, str]) -> Config:
    """The config the answers make, loaded with the secrets from ``environ``: what
    discovery signs in with. InitError naming the variables to set, or the problem."""
    variables = secret_variables(answers)
    unset = [(name, what) for name, what in variables if not environ.get(name)]
    if unset:
        listed = "; ".join(f"{name} ({what})" for name, what in unset)
        raise InitError(
            f"init --discover signs in with the secrets the config names: set {listed}, "
            "or run init without --discover"
        )
    # Never written: projects are a stand-in until discovery lists those in reach (the
    # loader wants a scope); the sampled search names the chosen ones itself.
    probe = replace(answers, projects=answers.projects or ("DISCOVERY",))
    with tempfile.TemporaryDirectory(prefix="jira-crm-sync-init-") as directory:
        path = Path(directory) / "probe.toml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(render(example_text(), probe))
        try:
            return load_config(path, environ=dict(environ))
        except ConfigFileError as exc:
            raise InitError(
                "init --discover cannot sign in with these answers: " + "; ".join(exc.problems)
            ) from None


def discover_sites(
    config: Config,
    given: Mapping[str, str | None],
    ask: Ask | None,
    tell: Callable[[str], None],
) -> tuple[tuple[str, ...], Discovery]:
    """Sign in to both sides, choose the projects (:func:`choose_projects`) and discover
    the rest: (projects, what was found). ConnectorError as the sites answer."""
    from connectors.crm import Discoverable
    from connectors.jira import open_jira
    from connectors.jira.settings import jira_meter
    from connectors.retry import RetryPolicy
    from sync.discover import discover, projects_in_reach
    from sync.remote import build_crm

    meter = jira_meter()
    jira = open_jira(config.jira_settings(), meter)
    # One quick retry, not a cycle's minutes of back-off: a person is waiting.
    quick = RetryPolicy(attempts=2, initial_wait=0.5)
    crm = build_crm(config, retry=quick)
    try:
        if not isinstance(crm, Discoverable):
            raise InitError(
                f"init --discover cannot look into {config.crm.name} yet; run init without "
                "--discover and fill in its names by hand"
            )
        facts = jira.connect()
        crm.connect()
        in_reach = projects_in_reach(jira)
        projects = choose_projects(given, ask, tell, in_reach)
        found = discover(jira, crm, projects, in_reach, config.push.crm.fields or None)
    finally:
        jira.close()
        crm.close()
    who = config.jira.email or facts.display_name or facts.user
    sf, hs = config.crm.salesforce, config.crm.hubspot
    auth = sf.auth if sf is not None else hs.auth if hs is not None else config.crm.kind
    signed_in = (
        f"signed in to Jira {facts.deployment} at {facts.base_url} as {who}, and to "
        f"{config.crm.name} at {crm.instance_url} ({auth})"
    )
    return projects, replace(found, calls=(meter.total, crm.meter.total), signed_in=signed_in)
