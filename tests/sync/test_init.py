"""`jira-crm-sync init` through the real entry point: flags only or answered prompts, a
commented file built from config.example.toml that loads once the named variables are set,
mode 0600, no secret in it, and no overwrite without --force."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.salesforce.settings import AUTH_KINDS
from sync.cli import app
from sync.config import load_config
from sync.init_config import example_text
from tests.sync.e2e import CLI, cli_env

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
CLOUD = [
    "--jira-url",
    "https://acme.atlassian.net/",
    "--jira-email",
    "ops@acme.example",
    "--projects",
    "web, MOBILE_2",
]


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def variables(out: str) -> dict[str, str]:
    """The environment variables init told us to set, each given a made-up secret."""
    names = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    return {name: f"secret-of-{name.lower()}" for name in names}


def test_flags_only_write_a_commented_private_file_that_loads(tmp_path: Path) -> None:
    path = tmp_path / "jira-crm-sync.toml"
    code, out, err = invoke(
        "init", "--output", str(path), "--no-input", *CLOUD,
        "--salesforce-auth", "jwt", "--salesforce-username", "sync@acme.example",
    )  # fmt: skip
    assert code == 0, out + err
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    example = EXAMPLE.read_text(encoding="utf-8")
    comments = [line for line in example.splitlines() if line.startswith("#")]
    assert all(line in text.splitlines() for line in comments)  # every comment kept
    env = variables(out)
    assert set(env) == {"JIRA_API_TOKEN", "SALESFORCE_CONSUMER_KEY"}
    assert '"${JIRA_API_TOKEN}"' in text and '"${SALESFORCE_CONSUMER_KEY}"' in text
    config = load_config(path, environ=env)
    assert config.jira.url == "https://acme.atlassian.net"
    assert config.jira.deployment == "cloud" and config.jira.email == "ops@acme.example"
    assert config.jira.projects == ["WEB", "MOBILE_2"]
    assert config.jira.api_token is not None
    assert config.jira.api_token.get_secret_value() == "secret-of-jira_api_token"
    sf = config.crm.salesforce
    assert (sf.auth, sf.username, sf.login_url) == (
        "jwt",
        "sync@acme.example",
        "https://login.salesforce.com",
    )
    assert sf.private_key_file == "/etc/jira-crm-sync/salesforce-jwt.key"
    assert config.state.url is None  # the default: SQLite in the user's state directory
    assert f"jira-crm-sync --config {path} check --online" in out


@pytest.mark.parametrize("auth", AUTH_KINDS)
@pytest.mark.parametrize("jira_auth", ["cloud", "server"])
def test_every_auth_kind_loads_and_no_secret_is_written(
    tmp_path: Path, auth: str, jira_auth: str
) -> None:
    path = tmp_path / "sync.toml"
    per_auth = {
        "client_credentials": ["--salesforce-login-url", "https://acme.my.salesforce.com"],
        "session": ["--salesforce-instance-url", "https://acme.my.salesforce.com"],
    }.get(auth, ["--salesforce-username", "sync@acme.example"])
    code, out, err = invoke(
        "--config", str(path), "init", "--no-input", *CLOUD, "--jira-auth", jira_auth,
        "--salesforce-auth", auth, *per_auth, "--state-url", f"sqlite:///{tmp_path}/s.db",
    )  # fmt: skip
    assert code == 0, out + err
    env = variables(out)
    config = load_config(path, environ=env)
    assert config.crm.salesforce.auth == auth
    assert config.state.url == f"sqlite:///{tmp_path}/s.db"
    assert config.jira.deployment == jira_auth
    secret = config.jira.api_token if jira_auth == "cloud" else config.jira.personal_access_token
    assert secret is not None and secret.get_secret_value().startswith("secret-of-jira_")
    config.salesforce_settings()  # every key the auth kind needs is there
    text = path.read_text(encoding="utf-8")
    for value in env.values():
        assert value not in text
    active = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    secret_keys = ("password", "security_token", "consumer_secret", "access_token", "api_token")
    for line in active:
        key = line.split("=")[0].strip()
        if key in secret_keys or key.endswith("_token"):
            assert line.split("=", 1)[1].strip().startswith('"${'), line


@pytest.mark.parametrize("auth", ["private_app", "oauth"])
def test_a_hubspot_config_loads_with_hubspot_names_and_no_secret(tmp_path: Path, auth: str) -> None:
    path = tmp_path / "hub.toml"
    per_auth = ["--hubspot-client-id", "app-1234"] if auth == "oauth" else []
    code, out, err = invoke(
        "init", "--output", str(path), "--no-input", *CLOUD, "--crm", "hubspot",
        "--hubspot-auth", auth, *per_auth,
    )  # fmt: skip
    assert code == 0, out + err
    env = variables(out)
    wanted = {
        "private_app": {"JIRA_API_TOKEN", "HUBSPOT_ACCESS_TOKEN"},
        "oauth": {"JIRA_API_TOKEN", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"},
    }[auth]
    assert set(env) == wanted
    config = load_config(path, environ=env)
    assert config.crm.kind == "hubspot" and config.crm.salesforce is None
    hs = config.crm.hubspot
    assert hs is not None and hs.auth == auth and hs.base_url == "https://api.hubapi.com"
    settings = config.hubspot_settings()  # every key the auth kind needs is there
    assert settings.client_id == ("app-1234" if auth == "oauth" else None)
    assert (hs.company.segment_field, config.link.crm_field) == (
        "customer_group",
        "jira_project_keys",
    )
    assert (config.push.crm.object, config.push.crm.external_id_field) == (
        "jira_project_status",
        "jira_sync_key",
    )
    assert config.push.crm.fields["account"] == "company_id"
    assert config.satisfaction.survey.object == "feedback_submissions"
    text = path.read_text(encoding="utf-8")
    assert "[crm.salesforce" not in text and "__c" not in text.split("[link]")[1]
    for value in env.values():
        assert value not in text
    assert "HUBSPOT_" in out and "SALESFORCE_" not in out


def test_flags_of_the_other_crm_are_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    code, out, err = invoke(
        "init", "--output", str(path), "--no-input", *CLOUD, "--crm", "hubspot",
        "--salesforce-auth", "jwt",
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert "--salesforce-auth is for --crm salesforce; this config is for hubspot" in err
    assert not path.exists()


def test_prompts_are_answered_and_a_bad_answer_is_asked_again(tmp_path: Path) -> None:
    path = tmp_path / "asked.toml"
    answers = [
        "jira.acme.internal",  # not a URL: asked again
        "https://jira.acme.internal",
        "server",
        "OPS, 9bad",  # not a project key: asked again
        "OPS, WEB",
        "password",
        "",  # the default login URL
        "sync@acme.example",
        "",  # the default state store
    ]
    code, out, err = invoke("init", "-o", str(path), "--prompt", input="\n".join(answers) + "\n")
    assert code == 0, out + err
    assert "Jira site URL must be a URL like https://example.com; try again" in err
    assert "must be Jira project keys" in err
    env = variables(out)
    assert set(env) == {
        "JIRA_PERSONAL_ACCESS_TOKEN",
        "SALESFORCE_PASSWORD",
        "SALESFORCE_SECURITY_TOKEN",
    }
    config = load_config(path, environ=env)
    assert (config.jira.url, config.jira.deployment, config.jira.email) == (
        "https://jira.acme.internal",
        "server",
        None,
    )
    assert config.jira.projects == ["OPS", "WEB"]
    assert config.crm.salesforce.auth == "password"
    assert config.crm.salesforce.username == "sync@acme.example"


def test_an_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    path = tmp_path / "jira-crm-sync.toml"
    path.write_text("# mine\n", encoding="utf-8")
    args = ["init", "-o", str(path), "--no-input", *CLOUD, "--salesforce-username", "u@x.io"]
    code, out, err = invoke(*args)
    assert code == 2 and out == ""
    assert err == (
        f"jira-crm-sync: {path} exists; pass --force to overwrite it, or --output PATH to "
        "write elsewhere\n"
    )
    assert path.read_text(encoding="utf-8") == "# mine\n"
    code, _, err = invoke(*args, "--force")
    assert code == 0, err
    assert "[crm.salesforce]" in path.read_text(encoding="utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_missing_or_wrong_flag_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    code, _, err = invoke("init", "-o", str(path), "--no-input", "--jira-url", "https://a.b")
    assert code == 2
    assert err == (
        "jira-crm-sync: --jira-email is needed (e-mail of the Atlassian account the sync "
        "uses); pass it, or run init at a terminal to be asked\n"
    )
    code, _, err = invoke(
        "init", "-o", str(path), "--no-input", *CLOUD, "--salesforce-auth", "oauth",
    )  # fmt: skip
    assert code == 2  # the choices are the flag's own: listed in --help, checked on parse
    assert err == (
        "jira-crm-sync: Invalid value for '--salesforce-auth': 'oauth' is not one of "
        "'password', 'oauth_password', 'jwt', 'client_credentials', 'session'; see "
        "`jira-crm-sync init --help`\n"
    )
    code, _, err = invoke(
        "init", "-o", str(path), "--no-input", *CLOUD,
        "--salesforce-auth", "client_credentials",
        "--salesforce-login-url", "https://login.salesforce.com",
    )  # fmt: skip
    assert code == 2 and "needs your My Domain URL" in err
    assert not path.exists()


def test_the_console_script_writes_the_default_file_without_a_terminal(tmp_path: Path) -> None:
    """The installed entry point, stdin not a terminal: no prompt, ./jira-crm-sync.toml;
    then `check` (offline) passes on it with the variables set."""
    args = [*CLOUD, "--salesforce-auth", "client_credentials"]
    args += ["--salesforce-login-url", "https://acme.my.salesforce.com"]
    env = cli_env()
    env.pop("JIRA_CRM_SYNC_CONFIG", None)
    done = subprocess.run(
        [str(CLI), "init", *args, "--state-url", f"sqlite:///{tmp_path}/state.db"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    written = tmp_path / "jira-crm-sync.toml"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    checked = subprocess.run(
        [str(CLI), "check"],
        cwd=tmp_path, env={**env, **variables(done.stdout)}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"OK    config: {written} loads" in checked.stdout


def test_the_package_ships_the_example(tmp_path: Path) -> None:
    """`init` reads the example as package data (a link to the top-level file)."""
    assert example_text() == EXAMPLE.read_text(encoding="utf-8")
    shipped = Path(__file__).resolve().parents[2] / "sync" / "config.example.toml"
    assert shipped.is_symlink() and os.readlink(shipped) == "../config.example.toml"
