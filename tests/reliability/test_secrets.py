"""Secrets (issue 9, SPEC section 5): with distinctive secret values set, no command of the
real CLI (a subprocess of ``.venv/bin/jira-crm-sync``) lets one out: not on stdout or
stderr (at -vv, text and JSON logs, with wrong credentials, through an expired session),
not in any file it writes (reports, the config ``init`` writes), not in any row of the
state store (every table dumped, and the SQLite file's raw bytes), not in /metrics.

A value counts as leaked in any of the forms it travels in: as is, URL-encoded,
JSON-escaped, or base64 at any alignment (a Basic auth header carries base64 of
``email:token``). The sandbox accepts exactly these values (its ``credentials=``), so the
runs are real sign-ins; the sessions it issues at login are secrets too. Every auth kind
the sandbox serves is exercised: Jira API token; Salesforce client credentials, username
+ password + security token, a JWT signed with a key file, and a static access token.

Config files readable by other users: ``check`` warns, naming the file and the chmod.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.sandbox.faults import Fault
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Credentials, Sandbox
from sync.store import open_store
from tests.sync.e2e import ANCHOR, CLI, SyncEnv, cli_env, store_snapshot

#: Distinctive values with characters that change under URL encoding and JSON escaping.
CREDENTIALS = Credentials(
    jira_email="sync-bot@example.com",
    jira_api_token="JiraTok-7Qx+v/Lm9=ZpW2rT",
    jira_pat="JiraPat-Ub4/kN8+sY1=cVq3",
    salesforce_username="sync-bot@example.com",
    salesforce_password="SfPass-Hq2+eR7/wYd",
    salesforce_security_token="SfSecTok-p9Kd3mXv",
    salesforce_consumer_key="3MVG9SfConsumerKey-Aa7+Bb8/Cc9",
    salesforce_consumer_secret="SfConsumerSecret-Dd4+Ee5/Ff6=",
    salesforce_access_token="00DSANDBOX!SfAccessTok-Gg1+Hh2/Ii3",
)
#: Wrong values tried on purpose (they must not be echoed either).
WRONG_JIRA_TOKEN = "WrongJiraTok-Kk4+Ll5/Mm6"
WRONG_SF_SECRET = "WrongSfSecret-Nn7+Oo8/Pp9"
#: The environment variables the configs read their secrets from (the names `init` gives).
ENV = {
    "JIRA_API_TOKEN": CREDENTIALS.jira_api_token,
    "SALESFORCE_CONSUMER_KEY": CREDENTIALS.salesforce_consumer_key,
    "SALESFORCE_CONSUMER_SECRET": CREDENTIALS.salesforce_consumer_secret,
    "SALESFORCE_PASSWORD": CREDENTIALS.salesforce_password,
    "SALESFORCE_SECURITY_TOKEN": CREDENTIALS.salesforce_security_token,
    "SALESFORCE_ACCESS_TOKEN": CREDENTIALS.salesforce_access_token,
}


def _base64_forms(value: bytes) -> Iterator[str]:
    """Substrings every base64 encoding of a text containing ``value`` includes, at each
    of the three alignments (edge groups, mixed with neighbours, left out)."""
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * pad + value).decode().rstrip("=")
            inner = encoded[4 if pad else 0 : -4]
            if len(inner) >= 8:
                yield inner


def forms(secret: str) -> set[str]:
    """How a secret can show up in text: as is, URL-encoded, JSON-escaped, base64."""
    out = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        *_base64_forms(secret.encode()),
    }
    return {form for form in out if len(form) >= 8}


@dataclass
class Leaks:
    """Everything the CLI printed or wrote, scanned at the end for every secret known by
    then (the sessions the sandbox issued exist only after the runs)."""

    secrets: dict[str, set[str]] = field(default_factory=dict)
    texts: list[tuple[str, str]] = field(default_factory=list)

    def add_secret(self, name: str, value: str) -> None:
        self.secrets[name] = forms(value)

    def collect(self, where: str, text: str | bytes) -> None:
        data = text if isinstance(text, str) else text.decode("utf-8", "replace")
        self.texts.append((where, data))

    def found(self) -> list[str]:
        """``where: which secret (form) in …context`` for every leak."""
        out: list[str] = []
        for where, data in self.texts:
            for name, variants in self.secrets.items():
                for variant in sorted(variants):
                    if variant in data:
                        at = data.index(variant)
                        out.append(
                            f"{where}: {name} ({variant!r}) in …{data[max(0, at - 60) : at]}"
                        )
                        break
        return out


def _jwt_key(directory: Path) -> tuple[Path, bytes, str]:
    """A fresh RSA key: (private key file, public key PEM, a line of the private key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = directory / "salesforce-jwt.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public, pem.decode().splitlines()[5]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SF_SECTION_END = "\n[crm.salesforce.account]"


@dataclass(frozen=True)
class Call:
    """One command line, extra environment, and the exit codes it may end with."""

    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    expect: tuple[int, ...] = (0,)
    config: Path | None = None


class SecretWorld:
    """A sandbox accepting :data:`CREDENTIALS`, a config reading them from the
    environment, and a record of everything the CLI printed or wrote."""

    def __init__(self, directory: Path, tls: Tls) -> None:
        self.directory = directory
        self.box = Sandbox(issues=120, accounts=16, seed=5, anchor=ANCHOR, credentials=CREDENTIALS)
        sf = self.box.salesforce
        self.key_file, public_key, key_line = _jwt_key(directory)
        sf.jwt_public_key = public_key
        self.sessions: list[str] = []
        issue = sf.issue_session

        def remembered() -> str:
            token = issue()
            self.sessions.append(token)
            return token

        sf.issue_session = remembered  # type: ignore[method-assign]
        self.env = SyncEnv(self.box, directory, f"sqlite:///{directory / 'state.db'}", tls)
        self.port = _free_port()
        self._use_environment()
        self.leaks = Leaks()
        for name, value in (
            *((f"credentials.{k}", v) for k, v in vars(CREDENTIALS).items() if "token" in k),
            ("salesforce password", CREDENTIALS.salesforce_password),
            ("salesforce consumer key", CREDENTIALS.salesforce_consumer_key),
            ("salesforce consumer secret", CREDENTIALS.salesforce_consumer_secret),
            ("jira basic auth", f"{CREDENTIALS.jira_email}:{CREDENTIALS.jira_api_token}"),
            ("wrong jira token", WRONG_JIRA_TOKEN),
            ("wrong salesforce secret", WRONG_SF_SECRET),
            ("JWT private key", key_line),
        ):
            self.leaks.add_secret(name, value)

    def _use_environment(self) -> None:
        """Secrets out of the config file, into ${ENV} references."""
        c = CREDENTIALS
        path = self.env.config_path
        text = path.read_text(encoding="utf-8")
        for value, variable in (
            (c.jira_api_token, "JIRA_API_TOKEN"),
            (c.salesforce_consumer_key, "SALESFORCE_CONSUMER_KEY"),
            (c.salesforce_consumer_secret, "SALESFORCE_CONSUMER_SECRET"),
        ):
            assert text.count(f'"{value}"') == 1
            text = text.replace(f'"{value}"', f'"${{{variable}}}"')
        text = text.replace('listen = "127.0.0.1:9465"', f'listen = "127.0.0.1:{self.port}"')
        path.write_text(text, encoding="utf-8")

    def config_with_auth(self, name: str, salesforce: str) -> Path:
        """A copy of the config whose [crm.salesforce] auth lines are ``salesforce``."""
        text = self.env.config_path.read_text(encoding="utf-8")
        head, rest = text.split("[crm.salesforce]\n", 1)
        section, tail = rest.split(SF_SECTION_END, 1)
        keep = [
            line
            for line in section.splitlines()
            if line.split(" = ")[0] in ("login_url", "instance_url", "api_version", "ca_bundle")
        ]
        body = "\n".join([*keep, salesforce.strip()])
        path = self.directory / f"{name}.toml"
        text = f"{head}[crm.salesforce]\n{body}\n{SF_SECTION_END}{tail}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def cli(
        self,
        *args: str,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        expect: Iterable[int] = (0,),
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI with the secrets in its environment; scan what it printed."""
        done = subprocess.run(
            [str(CLI), "--config", str(config or self.env.config_path), *args],
            env={**cli_env(), **ENV, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.directory,
        )
        where = " ".join(args)
        assert done.returncode in tuple(expect), f"{where}: exit {done.returncode}\n{done.stderr}"
        assert "Traceback" not in done.stderr, f"{where}: {done.stderr}"
        self.leaks.collect(f"`{where}` stdout", done.stdout)
        self.leaks.collect(f"`{where}` stderr", done.stderr)
        return done

    def cli_many(self, *calls: Call) -> None:
        """Independent commands side by side (each a process of its own)."""
        with ThreadPoolExecutor(max_workers=3) as pool:
            for done in [
                pool.submit(self.cli, *c.args, config=c.config, env=c.env, expect=c.expect)
                for c in calls
            ]:
                done.result()

    def scan_files(self) -> None:
        """Every file under the directory (but the key file and the TLS material)."""
        for path in sorted(self.directory.rglob("*")):
            if path.is_file() and path != self.key_file and path.suffix not in (".pem",):
                self.leaks.collect(f"file {path.relative_to(self.directory)}", path.read_bytes())

    def scan_store(self) -> None:
        """Every row of every table of the state store."""
        store = open_store(self.env.store_url)
        try:
            for table, rows in store_snapshot(store).items():
                self.leaks.collect(f"state table {table}", "\n".join(rows))
        finally:
            store.close()

    def close(self) -> None:
        self.env.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[SecretWorld]:
    opened = SecretWorld(tmp_path_factory.mktemp("secrets"), tls)
    try:
        yield opened
    finally:
        opened.close()


def _serve_and_scrape(world: SecretWorld) -> None:
    """`serve` until its first cycle shows in /metrics; scan the scrape; SIGTERM it."""
    url = f"http://127.0.0.1:{world.port}/metrics"
    with subprocess.Popen(
        world.env.cli_args("-vv", "--log-format", "json", "serve"),
        env={**cli_env(), **ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=world.directory,
    ) as process:
        metrics = ""
        deadline = time.monotonic() + 60
        while "jira_crm_sync_cycles_total{" not in metrics:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "serve ran no cycle in 60 s"
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    metrics = answer.read().decode()
            except OSError:
                continue
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    world.leaks.collect("/metrics", metrics)
    world.leaks.collect("`serve` stdout", out)
    world.leaks.collect("`serve` stderr", err)


INIT = (
    *("init", "--no-input", "--output", "init.toml", "--jira-url", "https://example.atlassian.net"),
    *("--jira-auth", "cloud", "--jira-email", CREDENTIALS.jira_email, "--projects", "NOVA,ORION"),
    *("--salesforce-auth", "oauth_password", "--salesforce-username", "sync-bot@example.com"),
)


def test_no_command_prints_logs_writes_or_stores_a_secret(world: SecretWorld) -> None:
    box = world.box
    world.cli("-vv", "db", "upgrade")
    world.cli_many(
        Call(INIT),
        Call(("-vv", "check", "--online")),
        Call(("check", "--online", "--json")),
        Call(("-vv", "run", "--dry-run")),
    )
    # A session that expires mid-run and a 429: re-login and retry with -vv logging on.
    box.salesforce_app.faults.add(Fault(kind="expired_session", count=1, endpoint="composite"))
    box.jira_app.faults.add(Fault(kind="429", count=1, retry_after=0))
    world.cli("-vv", "run")
    world.cli("--log-format", "json", "-vv", "run", "--json")
    world.cli_many(  # read-only commands, side by side
        Call(("-vv", "reconcile")),
        Call(("--log-format", "json", "-vv", "reconcile", "--json")),
        Call(("-vv", "status")),
        Call(("status", "--json")),
        Call(("report",)),
        Call(("-vv", "report", "--format", "markdown", "-o", "report.md")),
        Call(("report", "--format", "html", "-o", "report.html")),
        Call(("report", "--by", "segment", "--format", "html", "-o", "segments.html")),
    )
    _serve_and_scrape(world)
    # Wrong credentials: refused (exit 3), neither the wrong nor the right value shown.
    jira, sf = {"JIRA_API_TOKEN": WRONG_JIRA_TOKEN}, {"SALESFORCE_CONSUMER_SECRET": WRONG_SF_SECRET}
    world.cli_many(
        Call(("-vv", "check", "--online"), jira, (3,)),
        Call(("--log-format", "json", "-vv", "run"), jira, (3,)),
        Call(("-vv", "check", "--online"), sf, (3,)),
        Call(("-vv", "reconcile", "--json"), sf, (3,)),
    )

    world.scan_files()
    world.scan_store()
    assert world.sessions, "the sandbox issued no session: the Salesforce runs did not sign in"
    for n, token in enumerate(world.sessions):
        world.leaks.add_secret(f"issued session {n}", token)
    assert len(world.leaks.texts) > 40  # every output, file and table was collected
    leaks = world.leaks.found()
    assert leaks == [], "\n".join(leaks)
    init_text = (world.directory / "init.toml").read_text(encoding="utf-8")
    assert "${JIRA_API_TOKEN}" in init_text  # init refers to the secret, never holds it


AUTHS = {
    "password": f"""
auth = "password"
username = "{CREDENTIALS.salesforce_username}"
password = "${{SALESFORCE_PASSWORD}}"
security_token = "${{SALESFORCE_SECURITY_TOKEN}}"
""",
    "jwt": f"""
auth = "jwt"
username = "{CREDENTIALS.salesforce_username}"
consumer_key = "${{SALESFORCE_CONSUMER_KEY}}"
private_key_file = "salesforce-jwt.key"
""",
    "session": """
access_token = "${SALESFORCE_ACCESS_TOKEN}"
auth = "session"
""",
}


def test_other_salesforce_sign_ins_keep_their_secrets_too(world: SecretWorld) -> None:
    with world.box.salesforce_app.lock:  # the static session, revoked by an expiry fault
        world.box.salesforce.sessions[CREDENTIALS.salesforce_access_token] = (
            world.box.salesforce.now()
        )
    wrong = {
        "password": {"SALESFORCE_PASSWORD": WRONG_SF_SECRET},
        "jwt": {"SALESFORCE_CONSUMER_KEY": WRONG_SF_SECRET},
        "session": {"SALESFORCE_ACCESS_TOKEN": WRONG_SF_SECRET},
    }
    checks: list[Call] = []
    for auth, section in AUTHS.items():
        config = world.config_with_auth(auth, section)
        checks.append(Call(("--log-format", "json", "-vv", "check", "--online"), config=config))
        # One at a time: the runs share the state store, and a second would find it locked.
        world.cli("-vv", "run", env=wrong[auth], expect=(3,), config=config)
    world.cli_many(*checks)
    for n, token in enumerate(world.sessions):
        world.leaks.add_secret(f"issued session {n}", token)
    leaks = world.leaks.found()
    assert leaks == [], "\n".join(leaks)


def test_check_warns_when_the_config_is_readable_by_others(world: SecretWorld) -> None:
    path = world.env.config_path
    assert world.cli("check").stdout.count("open to other users") == 0
    path.chmod(0o644)
    try:
        done = world.cli("check")
    finally:
        path.chmod(0o600)
    lines = [line for line in done.stdout.splitlines() if "open to other users" in line]
    assert lines == [
        f"WARN  config file permissions: {path} is open to other users (mode 0644); "
        f"run chmod 600 {path}"
    ], done.stdout
