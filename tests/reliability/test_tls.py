"""TLS through the real `run` against the HTTPS sandbox, whose certificate a CA of its own
signed: verification is on by default for both sides, a wrong or missing CA fails with
one line naming ``ca_bundle`` of that side, the environment's CA variables cannot turn
verification off or override the configured bundle, and no config key turns it off.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.server import Tls, make_tls
from tests.reliability.helpers import cli, one_error_line
from tests.sync.e2e import ANCHOR, SyncEnv, cli_env, make_sandbox

JIRA_CA = "[jira]\nurl"
SF_CA = "[crm.salesforce]\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[SyncEnv]:
    """A served sandbox (small world) and a config that trusts its CA on both sides."""
    directory = tmp_path_factory.mktemp("tls")
    box = make_sandbox(20, 4, seed=2, anchor=ANCHOR)
    opened = SyncEnv(box, directory, f"sqlite:///{directory / 'state.db'}", tls)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the sandbox's certificate."""
    return make_tls(tmp_path_factory.mktemp("other-ca")).ca_path


def _config(env: SyncEnv, tmp_path: Path, jira_ca: str, sf_ca: str) -> str:
    """The sandbox config with each side's ca_bundle replaced."""
    assert env.box.endpoints is not None
    right = str(env.box.endpoints.ca_bundle)
    text = env.config_path.read_text(encoding="utf-8")
    line = f'ca_bundle = "{right}"'
    assert text.count(line) == 2
    jira_at, sf_at = text.index(line), text.rindex(line)
    text = (
        text[:jira_at]
        + f'ca_bundle = "{jira_ca}"'
        + text[jira_at + len(line) : sf_at]
        + f'ca_bundle = "{sf_ca}"'
        + text[sf_at + len(line) :]
    )
    path = tmp_path / "tls.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _right(env: SyncEnv) -> str:
    assert env.box.endpoints is not None
    return str(env.box.endpoints.ca_bundle)


def test_the_sandbox_config_works_so_failures_below_are_tls(env: SyncEnv, tmp_path: Path) -> None:
    config = _config(env, tmp_path, _right(env), _right(env))
    result = cli(config, "run", "--dry-run")
    assert result.exit_code == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("side", "section"), [("jira", "[jira] ca_bundle"), ("salesforce", "[crm.salesforce]")]
)
@pytest.mark.parametrize("which", ["system-store", "wrong-ca"])
def test_an_untrusted_certificate_fails_naming_ca_bundle_of_that_side(
    env: SyncEnv, tmp_path: Path, other_ca: Path, side: str, section: str, which: str
) -> None:
    """No ca_bundle (the system store: verification on by default) or another CA."""
    bad = "" if which == "system-store" else str(other_ca)
    right = _right(env)
    config = _config(env, tmp_path, *((bad, right) if side == "jira" else (right, bad)))
    line = one_error_line(cli(config, "run", "--dry-run"), 3)
    assert line.startswith(f"{side}: "), line
    assert "ca_bundle" in line and section in line, line
    assert "certificate" in line.lower() or "TLS" in line, line
    if bad:
        assert bad in line, "the message names the bundle it tried"
    # In plain words, not the reprs requests nests (SSLError(MaxRetryError(...))).
    key = f"{'[jira]' if side == 'jira' else '[crm.salesforce]'} ca_bundle"
    where = f"the CA in {key} ({bad})" if bad else f"a CA of the system store ({key} is not set)"
    assert f"the certificate is not signed by {where} (OpenSSL: " in line, line
    assert f"set {key} to the PEM file of the CA that signed the site's certificate" in line
    assert not any(raw in line for raw in ("Error(", "_ssl.c", "Max retries", "[SSL")), line


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({"CURL_CA_BUNDLE": ""}, id="curl-empty"),
        pytest.param({"REQUESTS_CA_BUNDLE": ""}, id="requests-empty"),
        pytest.param({"REQUESTS_CA_BUNDLE": "RIGHT"}, id="requests-right-ca"),
        pytest.param({"CURL_CA_BUNDLE": "RIGHT"}, id="curl-right-ca"),
    ],
)
@pytest.mark.parametrize("side", ["jira", "salesforce"])
def test_ca_variables_in_the_environment_neither_disable_nor_override_verification(
    env: SyncEnv, tmp_path: Path, other_ca: Path, environment: dict[str, str], side: str
) -> None:
    """One side's config names a CA that did not sign the certificate (the other side the
    right one, so the failure must come from the first); an empty CA variable (requests
    once read it as verify=False) or one naming the right CA must not make it trust the
    sandbox. (requests lets these variables override a session's own ``verify``.)"""
    wrong, right = str(other_ca), _right(env)
    config = _config(env, tmp_path, *((wrong, right) if side == "jira" else (right, wrong)))
    values = {k: right if v == "RIGHT" else v for k, v in environment.items()}
    line = one_error_line(cli(config, "run", "--dry-run", env=dict(values)), 3)
    assert line.startswith(f"{side}: ") and "ca_bundle" in line and wrong in line, line


def test_the_installed_command_with_an_empty_curl_ca_bundle_still_verifies(
    env: SyncEnv, tmp_path: Path
) -> None:
    """The same through the console script, in a process whose environment has it."""
    config = _config(env, tmp_path, "", "")
    result = subprocess.run(
        [str(Path(env.cli_args()[0])), "--config", config, "run", "--dry-run"],
        env={**cli_env(), "CURL_CA_BUNDLE": "", "REQUESTS_CA_BUNDLE": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "ca_bundle" in line, line


@pytest.mark.parametrize(
    ("addition", "where"),
    [
        ("verify = false", "jira.verify"),
        ("verify_ssl = false", "jira.verify_ssl"),
        ("insecure = true", "jira.insecure"),
    ],
)
def test_no_config_key_turns_verification_off(
    env: SyncEnv, tmp_path: Path, addition: str, where: str
) -> None:
    config = _config(env, tmp_path, _right(env), _right(env))
    text = Path(config).read_text(encoding="utf-8").replace(JIRA_CA, f"[jira]\n{addition}\nurl")
    Path(config).write_text(text, encoding="utf-8")
    result = cli(config, "run", "--dry-run")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert f"{where}: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["false", "0", "true"])
def test_ca_bundle_is_a_path_never_a_switch(env: SyncEnv, tmp_path: Path, value: str) -> None:
    config = _config(env, tmp_path, _right(env), _right(env))
    text = Path(config).read_text(encoding="utf-8")
    text = text.replace(f'ca_bundle = "{_right(env)}"', f"ca_bundle = {value}", 1)
    Path(config).write_text(text, encoding="utf-8")
    result = cli(config, "run", "--dry-run")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "jira.ca_bundle: " in result.stderr


@pytest.mark.parametrize("side", ["jira", "crm.salesforce"])
def test_a_ca_bundle_that_does_not_exist_is_named(env: SyncEnv, tmp_path: Path, side: str) -> None:
    missing = str(tmp_path / "no-such-ca.pem")
    right = _right(env)
    config = _config(env, tmp_path, *((missing, right) if side == "jira" else (right, missing)))
    output = cli(config, "run", "--dry-run")
    assert output.exit_code == 2, output.stdout + output.stderr
    assert "Traceback" not in output.stdout + output.stderr
    assert f"{side}.ca_bundle: {missing}" in output.stderr
    assert output.stderr.strip().splitlines()[-1].startswith("jira-crm-sync: ")
