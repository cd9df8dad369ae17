"""`jira-crm-sync check [--online]` through the real entry point, against the HTTPS sandbox:
offline it makes no call; online every check passes on the sandbox config; a missing
field, a wrong credential, a closed port, a denied permission and an open config file are
each one line saying what to do, with exit codes 2 (config) and 3 (reach or sign in)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sandbox.faults import Fault
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cli import app
from sync.store import repo
from tests.sync.e2e import ANCHOR, SyncEnv, calls, make_sandbox, reset_calls


@pytest.fixture(scope="module")
def box(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One served sandbox for the module: checks read, they never write."""
    sandbox = make_sandbox(150, 20, seed=2, anchor=ANCHOR)
    sandbox.serve(tmp_path_factory.mktemp("check-box"), tls=tls)
    yield sandbox
    sandbox.stop()


def _env(box: Sandbox, directory: Path, store_url: str) -> SyncEnv:
    return SyncEnv(box, directory, store_url, tls=None)


@pytest.fixture
def env(box: Sandbox, tmp_path: Path) -> Iterator[SyncEnv]:
    """A config for the module's sandbox, with a SQLite store."""
    opened = _env(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}")
    yield opened
    opened.close()
    box.jira.denied_permissions = set()


def check(env: SyncEnv, *args: str) -> tuple[int, str, str]:
    """``jira-crm-sync --config <env> check <args>`` in-process: (exit code, out, err)."""
    result = CliRunner().invoke(app, ["--config", str(env.config_path), "check", *args])
    return result.exit_code, result.stdout, result.stderr


def lines(out: str, status: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(status)]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_offline_check_passes_and_calls_nothing(env: SyncEnv) -> None:
    reset_calls(env.box)
    code, out, err = check(env)
    assert code == 0, out + err
    assert err == ""
    assert lines(out, "FAIL") == [] and lines(out, "WARN") == []
    names = [line.split(":")[0].split(None, 1)[1] for line in out.splitlines()]
    assert names[:2] == ["config", "jira.ca_bundle"]
    assert {"schedule", "jira labels", "state store"} <= set(names)
    assert calls(env.box).reads == 0  # offline means offline
    assert not (env.directory / "state.db").exists()  # and creates nothing


def test_online_check_passes_against_the_sandbox(
    box: Sandbox, tmp_path: Path, store_url: str
) -> None:
    """The real console script, --json: every check OK on a fresh and on a used store."""
    env = _env(box, tmp_path, store_url)
    try:
        fresh = env.cli("check", "--online", "--json")
        assert fresh.returncode == 0, fresh.stdout + fresh.stderr
        document = json.loads(fresh.stdout)  # one JSON document, nothing else
        statuses = {c["name"]: c["status"] for c in document["checks"]}
        assert document["ok"] is True
        assert set(statuses.values()) == {"ok"}, document
        projects = [p.key for p in box.world.projects]
        assert {
            "jira login",
            "jira time zone",
            "jira scope",
            "jira field Salesforce Account",
            "jira epic link",
            "jira API budget",
            "salesforce login",
            "salesforce object Account",
            "salesforce object Case",
            "salesforce object Jira_Project_Status__c",
            "salesforce API budget",
            *(f"jira project {key}" for key in projects),
        } <= set(statuses)
        # measure = "count": the story-points field is not one the rules use.
        assert "jira field Story Points" not in statuses
        detail = {c["name"]: c["detail"] for c in document["checks"]}
        assert '"Epic Link" (customfield_10014, Epic Link)' in detail["jira epic link"]
        assert "Asia/Shanghai, not UTC" in detail["jira time zone"]
        assert "sandbox@example.com on https://127.0.0.1:" in detail["jira login"]

        with env.store.transaction() as tx:  # what earlier runs spent today
            today = datetime.now(UTC).date()
            repo.add_calls(tx, "jira", today, 1234)
            repo.add_calls(tx, "salesforce", today, 56)
        used = json.loads(env.cli("check", "--online", "--json").stdout)
        detail = {c["name"]: c["detail"] for c in used["checks"]}
        assert "1,234 used today" in detail["jira API budget"]
        assert "56 used today" in detail["salesforce API budget"]
        assert "of the org's 100,000 daily API calls left" in detail["salesforce API budget"]
    finally:
        env.close()


def test_a_missing_salesforce_field_names_the_field_and_the_key(env: SyncEnv) -> None:
    env.edit_config('satisfaction_field = "CSAT__c"', 'satisfaction_field = "CSAT_Score__c"')
    code, out, err = check(env, "--online")
    assert code == 2, out + err
    (fail,) = lines(out, "FAIL")
    assert fail.startswith("FAIL  salesforce field Account.CSAT_Score__c: not found")
    assert "did you mean CSAT__c?" in fail
    assert "fix [crm.salesforce.account] satisfaction_field in the config" in fail
    assert err.strip().count("\n") == 0 and "salesforce field Account.CSAT_Score__c" in err


def test_a_missing_object_and_a_read_only_target_are_config_problems(env: SyncEnv) -> None:
    env.edit_config('object = "Jira_Project_Status__c"', 'object = "Jira_Project_Status__x"')
    code, out, _ = check(env, "--online")
    assert code == 2
    (fail,) = lines(out, "FAIL")
    assert "salesforce object Jira_Project_Status__x" in fail
    assert "Salesforce has no object 'Jira_Project_Status__x'" in fail

    env.edit_config('object = "Jira_Project_Status__x"', 'object = "Jira_Project_Status__c"')
    env.edit_config('summary = "Summary__c"', 'summary = "CreatedDate"')
    code, out, _ = check(env, "--online")
    assert code == 2
    (fail,) = lines(out, "FAIL")
    assert "Jira_Project_Status__c.CreatedDate: the integration user cannot write it" in fail
    assert "[push.crm.fields] summary" in fail


def test_an_unknown_jira_project_and_field(env: SyncEnv) -> None:
    key = env.box.world.projects[0].key
    env.edit_config(f'projects = ["{key}"', f'projects = ["NOPE", "{key}"')
    env.edit_config('jira_field = "Salesforce Account"', 'jira_field = "Salesforce Acount"')
    code, out, _ = check(env, "--online")
    assert code == 2
    fails = lines(out, "FAIL")
    assert any("jira project NOPE: Jira has no project NOPE" in f for f in fails), fails
    assert any(
        'jira field Salesforce Acount: Jira has no field named "Salesforce Acount" '
        "(set in [link] jira_field)"
        in f
        and '"Salesforce Account" (customfield_10100, text)' in f
        for f in fails
    ), fails


def test_a_garbled_field_list_is_read_again_as_a_run_does(env: SyncEnv) -> None:
    """`check --online` resolves the fields the way a cycle does: a name missing from one
    garbled /field answer is read again before it is called a config problem."""
    rename = {"kind": "rewrite", "endpoint": "/field", "set": {"*.name": "Garbled"}}
    env.box.jira_app.faults.add(Fault.from_json(rename))
    try:
        code, out, err = check(env, "--online")
    finally:
        env.box.jira_app.faults.clear()
    assert code == 0, out + err
    assert "OK    jira field Salesforce Account: [link] jira_field resolves to" in out


def test_a_field_list_that_is_not_one_is_a_remote_failure(env: SyncEnv) -> None:
    """An empty 200 from /field: exit 3 naming the endpoint, as a run exits; not "no field
    named ..." (exit 2)."""
    env.box.jira_app.faults.add(Fault.from_json({"kind": "empty", "endpoint": "/field"}))
    try:
        code, out, err = check(env, "--online")
    finally:
        env.box.jira_app.faults.clear()
    assert code == 3, out + err
    (fail,) = lines(out, "FAIL")
    assert fail.startswith("FAIL  jira field list: Jira at https://127.0.0.1:"), fail
    assert "(GET /rest/api/2/field, HTTP 200) with an empty body" in fail


def test_wrong_credentials_exit_3_name_the_side_and_never_show_the_secret(
    env: SyncEnv,
) -> None:
    c = env.box.credentials
    wrong_token, wrong_secret = "wrong-jira-token-8f3a", "wrong-sf-secret-77c1"
    env.edit_config(f'api_token = "{c.jira_api_token}"', f'api_token = "{wrong_token}"')
    env.edit_config(
        f'consumer_secret = "{c.salesforce_consumer_secret}"',
        f'consumer_secret = "{wrong_secret}"',
    )
    done = env.cli("check", "--online")  # the real console script, with its log handlers
    assert done.returncode == 3, done.stdout + done.stderr
    fails = lines(done.stdout, "FAIL")
    assert len(fails) == 2, fails
    assert fails[0].startswith("FAIL  jira login: Jira at https://127.0.0.1:")
    assert "refused the credentials (HTTP 401)" in fails[0]
    assert "check [jira] email and api_token" in fails[0]
    assert fails[1].startswith("FAIL  salesforce login: login at https://127.0.0.1:")
    assert "check [crm.salesforce] consumer_key, consumer_secret" in fails[1]
    for secret in (wrong_token, wrong_secret, c.salesforce_consumer_key):
        assert secret not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_host_exits_3(env: SyncEnv) -> None:
    port = closed_port()
    assert env.box.endpoints is not None
    env.edit_config(f'url = "{env.box.endpoints.jira_url}"', f'url = "https://127.0.0.1:{port}"')
    code, out, err = check(env, "--online")
    assert code == 3, out + err
    (fail,) = lines(out, "FAIL")
    assert fail.startswith(f"FAIL  jira login: cannot reach Jira at https://127.0.0.1:{port}")
    assert "check [jira] url" in fail
    assert "OK    salesforce login" in out  # the other side is still checked


def test_a_denied_permission_fails_its_project(env: SyncEnv) -> None:
    env.box.jira.denied_permissions = {"EDIT_ISSUES"}
    code, out, _ = check(env, "--online")
    assert code == 3
    fails = lines(out, "FAIL")
    assert len(fails) == len(env.config.jira.projects)
    for key, fail in zip(env.config.jira.projects, fails, strict=True):
        assert fail.startswith(f"FAIL  jira project {key}: the user lacks EDIT_ISSUES")
        assert "ask a Jira admin" in fail


def test_no_delete_own_comments_is_a_warning_naming_reconcile(env: SyncEnv) -> None:
    env.box.jira.denied_permissions = {"DELETE_OWN_COMMENTS"}
    code, out, _ = check(env, "--online")
    assert code == 0
    warns = [w for w in lines(out, "WARN") if "DELETE_OWN_COMMENTS" in w]
    assert len(warns) == len(env.config.jira.projects)
    assert all("`reconcile --apply` cannot delete a flag comment posted twice" in w for w in warns)


def test_an_open_config_or_secret_file_is_a_warning(env: SyncEnv) -> None:
    os.chmod(env.config_path, 0o644)
    code, out, _ = check(env)
    assert code == 0
    (warning,) = lines(out, "WARN")
    assert warning == (
        f"WARN  config file permissions: {env.config_path} is open to other users (mode "
        f"0644); run chmod 600 {env.config_path}"
    )
    token = env.directory / "jira-token"
    token.write_text(env.box.credentials.jira_api_token, encoding="utf-8")
    os.chmod(token, 0o640)
    os.chmod(env.config_path, 0o600)
    env.edit_config(
        f'api_token = "{env.box.credentials.jira_api_token}"', 'api_token_file = "jira-token"'
    )
    code, out, _ = check(env)
    assert code == 0
    (warning,) = lines(out, "WARN")
    assert f"jira.api_token_file permissions: {token} is open" in warning
    assert f"run chmod 600 {token}" in warning


def test_every_config_problem_is_listed_at_once(env: SyncEnv) -> None:
    text = env.config_path.read_text(encoding="utf-8")
    text = text.replace('every = "1m"', 'every = "1m"\nbogus = 1')
    env.config_path.write_text(text.replace('measure = "count"', 'measure = "counts"'))
    code, out, err = check(env, "--json")
    assert code == 2
    document = json.loads(out)
    assert document["ok"] is False
    details = [c["detail"] for c in document["checks"] if c["status"] == "fail"]
    assert any(d.startswith("schedule.bogus: unknown key") for d in details), details
    assert any(d.startswith("progress.measure:") for d in details), details
    assert err.startswith("jira-crm-sync: 2 check(s) failed")


def test_a_bad_schedule_and_label(env: SyncEnv) -> None:
    env.edit_config('every = "1m"', 'every = "*/15 * * *"')
    code, out, _ = check(env)
    assert code == 2
    fails = lines(out, "FAIL")
    assert any(
        "FAIL  schedule: [schedule] every = '*/15 * * *' is neither an interval" in f
        and '"*/15 * * * *"' in f
        for f in fails
    ), fails
    # A label the mapping rules refuse stops the config loading (so `run` exits 2 too).
    text = env.config_path.read_text(encoding="utf-8")
    env.config_path.write_text(
        text.replace('label = "customer-at-risk"', 'label = "customer at risk"'), encoding="utf-8"
    )
    code, out, _ = check(env)
    assert code == 2
    fails = lines(out, "FAIL")
    assert any("push.jira.label: Jira labels cannot contain spaces" in f for f in fails), fails
