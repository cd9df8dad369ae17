"""`init`: a commented config written from config.example.toml, filled with the answers.

The example's comments are the documentation, so the file is the example with the
answered keys set in place (and credential keys the chosen auth does not use commented
out). Secrets are never asked for and never written: the file names ``${ENV}`` variables,
and :func:`secret_variables` lists them for the user to set. The result is validated with
:func:`sync.config.load_config` before it replaces anything, and written with mode 0600.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import sqlalchemy as sa

from connectors.salesforce.settings import (
    AUTH_KINDS,
    DEFAULT_LOGIN_URL,
    GENERIC_LOGIN_HOSTS,
    AuthKind,
)
from sync.config import ConfigFileError, load_config

EXAMPLE_NAME = "config.example.toml"
JiraAuth = Literal["cloud", "server"]
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
}
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


def collect(
    given: Mapping[str, str | None],
    ask: Ask | None,
    tell: Callable[[str], None] = lambda message: None,
) -> Answers:
    """The answers: from ``given`` (flag name -> value), else ``ask``, else defaults;
    ``tell`` shows why an answer was not taken."""
    value = _Asker(given, ask, tell)
    jira_url = value("jira-url", "Jira site URL", _url)
    jira_auth = value(
        "jira-auth", "Jira auth: cloud (email + API token) or server (PAT)", _jira_auth, "cloud"
    )
    email = None
    if jira_auth == "cloud":
        email = value("jira-email", "E-mail of the Atlassian account the sync uses", _email)
    projects = value("projects", "Jira project keys in scope, comma-separated", _projects)
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
        projects=tuple(projects.split(",")),
        salesforce_auth=next(kind for kind in AUTH_KINDS if kind == auth),
        salesforce_login_url=login_url,
        salesforce_instance_url=instance_url,
        salesforce_username=username,
        salesforce_private_key_file=key_file,
        state_url=state_url or None,
    )


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

    def set(self, section: str, key: str, value: str | None) -> None:
        """``key = value`` in ``section`` (uncommenting it, or added at its end); with
        None, an active ``key = ...`` line is commented out."""
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
        if active is not None:
            self.lines[active] = line
        elif commented is not None:
            self.lines[commented] = line
        else:
            self.lines.insert(end, line)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(example: str, answers: Answers) -> str:
    """The config text: ``example`` with the answers filled in and secrets as ``${ENV}``."""
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
    doc.set("jira", "projects", "[" + ", ".join(_toml(p) for p in answers.projects) + "]")
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
    header = (
        "# Written by `jira-crm-sync init`. Secrets are not in this file: it reads them from\n"
        "# the environment variables named below as ${...} (or use *_file keys).\n"
        "# Then run: jira-crm-sync check --online\n#\n"
    )
    return header + doc.text()


def secret_variables(answers: Answers) -> list[tuple[str, str]]:
    """(environment variable, what to put in it) for every secret the config reads."""
    keys = ["jira.api_token" if answers.jira_auth == "cloud" else "jira.personal_access_token"]
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
