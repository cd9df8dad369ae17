"""Loading the config: the example is valid, every problem is reported at once with its
key path and fix, ${ENV} and *_file secrets work, and secrets never leak."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config import ConfigFileError, find_config, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
ENV = {"JIRA_API_TOKEN": "jira-secret-123", "SALESFORCE_CONSUMER_KEY": "ck-secret-456"}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jira-crm-sync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_config_is_valid(tmp_path: Path) -> None:
    config = load_config(EXAMPLE, environ=ENV)
    assert config.jira.api_token is not None
    assert config.jira.api_token.get_secret_value() == "jira-secret-123"
    assert "jira-secret-123" not in repr(config)
    assert config.push.crm.fields["health"] == "Health__c"
    assert config.jira_settings().projects == ("APOLLO", "ORION")


def test_every_problem_is_reported_at_once_with_key_and_fix(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('measure = "count"', 'measure = "counts"\nbogus = 1')
    text = text.replace("max_retries = 3", 'max_retries = "three"')
    text = text.replace('"${JIRA_API_TOKEN}"', '"${NOT_SET_ANYWHERE}"')
    with pytest.raises(ConfigFileError) as caught:
        load_config(_write(tmp_path, text), environ=ENV)
    problems = caught.value.problems
    joined = "\n".join(problems)
    assert "jira.api_token: environment variable NOT_SET_ANYWHERE is not set" in joined
    assert any(p.startswith("progress.measure:") for p in problems)
    assert any(p.startswith("progress.bogus: unknown key") for p in problems)
    assert any(p.startswith("jira.max_retries:") for p in problems)
    assert len(problems) == 4


def test_secret_files_are_read_and_conflicts_reported(tmp_path: Path) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text("from-a-file\n", encoding="utf-8")
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'api_token = "${JIRA_API_TOKEN}"', f'api_token_file = "{secret}"'
    )
    config = load_config(_write(tmp_path, text), environ=ENV)
    assert config.jira.api_token is not None
    assert config.jira.api_token.get_secret_value() == "from-a-file"

    both = text.replace(
        f'api_token_file = "{secret}"', f'api_token_file = "{secret}"\napi_token = "x"'
    )
    with pytest.raises(ConfigFileError, match=r"jira.api_token_file: both api_token and"):
        load_config(_write(tmp_path, both), environ=ENV)
    missing = text.replace(str(secret), str(tmp_path / "nope.txt"))
    with pytest.raises(ConfigFileError, match=r"jira.api_token_file: cannot read .*nope.txt"):
        load_config(_write(tmp_path, missing), environ=ENV)


def test_auth_requirements_are_named_without_the_secret(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace('auth = "jwt"', 'auth = "oauth_password"')
    with pytest.raises(ConfigFileError) as caught:
        load_config(_write(tmp_path, text), environ=ENV)
    message = str(caught.value)
    assert "required for auth = 'oauth_password'" in message
    assert "ck-secret-456" not in message and "jira-secret-123" not in message


def test_a_wrong_value_is_not_echoed(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'url = "https://your-site.atlassian.net"', 'url = "hunter2-not-a-url"'
    )
    with pytest.raises(ConfigFileError) as caught:
        load_config(_write(tmp_path, text), environ=ENV)
    assert "jira.url: " in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="not valid TOML"):
        load_config(_write(tmp_path, "[jira\nurl = 1"), environ=ENV)
    with pytest.raises(ConfigFileError, match="jira-crm-sync init"):
        load_config(tmp_path / "absent.toml", environ=ENV)


def test_config_is_found_explicit_then_local_then_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit = tmp_path / "explicit.toml"
    assert find_config(explicit, cwd=tmp_path) == explicit
    monkeypatch.setenv("JIRA_CRM_SYNC_CONFIG", str(tmp_path / "from-env.toml"))
    assert find_config(None, cwd=tmp_path) == tmp_path / "from-env.toml"
    local = _write(tmp_path, "")
    assert find_config(None, cwd=tmp_path) == local
    monkeypatch.delenv("JIRA_CRM_SYNC_CONFIG")
    (tmp_path / "jira-crm-sync.toml").unlink()
    with pytest.raises(ConfigFileError, match="no config file"):
        find_config(None, cwd=tmp_path)


def test_a_missing_ca_bundle_and_a_rule_the_mapping_layer_refuses_are_config_problems(
    tmp_path: Path,
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace(
        'order = ["jira_field", "crm_field", "static"]', 'order = ["jira_field", "jira_field"]'
    )
    text = text.replace('ca_bundle = ""', f'ca_bundle = "{tmp_path / "no-such-ca.pem"}"', 1)
    with pytest.raises(ConfigFileError) as caught:
        load_config(_write(tmp_path, text), environ=ENV)
    joined = "\n".join(caught.value.problems)
    assert f"jira.ca_bundle: {tmp_path / 'no-such-ca.pem'} is not a readable file" in joined
    assert "link.order: a rule is repeated; fix that key" in joined


def test_jira_overlap_seconds_is_a_bounded_key_the_connector_gets(tmp_path: Path) -> None:
    """``[jira] overlap_seconds``: how far back each pull re-reads (was fixed at 300 s)."""
    from sync.remote import build_remotes

    example = load_config(EXAMPLE, environ=ENV)
    assert example.jira_settings().overlap_seconds == 300
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.count("overlap_seconds = 300") == 1
    config = load_config(
        _write(tmp_path, text.replace("overlap_seconds = 300", "overlap_seconds = 900")),
        environ=ENV,
    )
    assert build_remotes(config).jira.settings.overlap_seconds == 900  # no network call
    for bad in ("-1", "3601", '"5m"'):
        with pytest.raises(ConfigFileError) as caught:
            load_config(
                _write(tmp_path, text.replace("overlap_seconds = 300", f"overlap_seconds = {bad}")),
                environ=ENV,
            )
        (problem,) = caught.value.problems
        assert problem.startswith("jira.overlap_seconds: "), problem
