"""`init --discover`, then `check --online`, then `run`, against the HTTPS sandbox (Jira Cloud
and Server, and Jira field names unlike the defaults): no hand edit between them, no secret
in the file, a handful of calls, and the results the demo world's end-to-end checks expect.
`check --online` suggests the same candidates when a configured name is missing."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.sandbox import schema
from connectors.sandbox.config_file import write_sandbox_config
from connectors.sandbox.faults import Fault
from connectors.sandbox.jira import fields as sandbox_fields
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from sync.cli import app
from sync.config import load_config
from tests.sync.e2e import ANCHOR, calls, expected, labelled, report_counts, reset_calls

#: Jira names unlike the defaults: discovery must find the fields by what they hold.
RENAMED = {
    schema.JIRA_ACCOUNT_FIELD_ID: "销售客户编号",
    schema.JIRA_STORY_POINTS_FIELD_ID: "工作量估算",
}


def invoke(
    *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> tuple[int, str, str]:
    """The CLI in-process: (exit code, stdout, stderr)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        result = CliRunner().invoke(app, list(args), env=env, input=input)
    finally:  # the CLI points the root logger at its own (captured) stderr
        root.handlers[:], root.level = handlers, level
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def box(
    tmp_path: Path, tls: Tls, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    """The demo world of the e2e tests, served over HTTPS (``param``: the Jira mode, and
    ``mode-locale`` for a localised site, ``cloud-renamed`` for field names unlike any
    default, Chinese ones given by an admin)."""
    mode, _, locale = getattr(request, "param", "cloud").partition("-")
    if locale == "renamed":
        renamed = tuple(
            dataclasses.replace(f, name=RENAMED[f.id]) if f.id in RENAMED else f
            for f in sandbox_fields.FIELDS
        )
        monkeypatch.setattr(sandbox_fields, "FIELDS", renamed)
        sandbox_fields.site_fields.cache_clear()
        locale = ""
    opened = Sandbox(
        issues=150, accounts=20, seed=2, anchor=ANCHOR, jira_mode=mode, locale=locale or "en"
    )
    opened.serve(tmp_path, tls=tls)
    try:
        yield opened
    finally:
        opened.stop()
        sandbox_fields.site_fields.cache_clear()


def init_command(box: Sandbox, path: Path) -> tuple[list[str], dict[str, str]]:
    """The init command line for the served sandbox, and the secrets' environment."""
    ends = box.endpoints
    assert ends is not None and ends.ca_bundle is not None
    c = box.credentials
    env = {
        "SALESFORCE_CONSUMER_KEY": c.salesforce_consumer_key,
        "SALESFORCE_CONSUMER_SECRET": c.salesforce_consumer_secret,
    }
    args = [
        "-vv", "init", "--discover", "--no-input", "--output", str(path),
        "--jira-url", ends.jira_url, "--jira-ca-bundle", str(ends.ca_bundle),
        "--salesforce-auth", "client_credentials", "--salesforce-login-url", ends.salesforce_url,
        "--salesforce-ca-bundle", str(ends.ca_bundle),
        "--state-url", f"sqlite:///{path.with_suffix('.db')}",
    ]  # fmt: skip
    if box.jira_mode == "cloud":
        args += ["--jira-auth", "cloud", "--jira-email", c.jira_email]
        env["JIRA_API_TOKEN"] = c.jira_api_token
    else:
        args += ["--jira-auth", "server"]
        env["JIRA_PERSONAL_ACCESS_TOKEN"] = c.jira_pat
    return args, env


@pytest.mark.parametrize(
    "box",
    ["cloud", "server", "cloud-renamed", "cloud-zh", "server-zh", "server-de"],
    indirect=True,
)
def test_discover_then_check_then_run_with_no_hand_edit(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "jira-crm-sync.toml"
    args, env = init_command(box, path)
    reset_calls(box)

    code, out, err = invoke(*args, env=env)

    assert code == 0, out + err
    made = calls(box)
    assert made.writes == 0 and made.reads <= 14, made.by_endpoint  # a handful
    text = path.read_text(encoding="utf-8")
    for secret in env.values():
        assert secret not in text and secret not in out + err
    config = load_config(path, environ=env)
    # Judged by which field the written name stands for on this site, not by its spelling.
    site = {f.name: f.id for f in box.jira.site_fields.listed}
    by_name = [f.name for f in box.jira.site_fields.listed]

    def field_of(ref: str) -> str:
        if ref.startswith("customfield_"):
            return ref
        assert by_name.count(ref) == 1, f"{ref!r} is not one field's name on this site"
        return site[ref]

    assert field_of(config.link.jira_field) == schema.JIRA_ACCOUNT_FIELD_ID
    assert field_of(config.progress.story_points_field) in (
        schema.JIRA_STORY_POINTS_FIELD_ID,
        schema.JIRA_STORY_POINT_ESTIMATE_FIELD_ID,
    )
    assert config.jira.projects == [p.key for p in box.world.projects]
    assert config.link.order == ("jira_field", "crm_field", "static")
    assert "(customfield_10100): text field" in out

    check = invoke("--config", str(path), "check", "--online", env=env)
    assert check[0] == 0, check[1] + check[2]
    assert "FAIL" not in check[1]

    run = invoke("--config", str(path), "run", env=env)
    assert run[0] == 0, run[1] + run[2]
    want = expected(box, datetime.now(UTC).date())
    assert report_counts(box) == want.reports
    assert labelled(box) == want.labelled


def test_discover_needs_the_secrets_in_the_environment(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    args, env = init_command(box, path)
    del env["SALESFORCE_CONSUMER_SECRET"]
    code, out, err = invoke(*args, env=env)
    assert (code, out) == (2, "")
    assert "set SALESFORCE_CONSUMER_SECRET (the connected app's consumer secret)" in err
    assert not path.exists()


def test_a_refused_token_writes_nothing_and_is_not_echoed(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    args, env = init_command(box, path)
    env["JIRA_API_TOKEN"] = "wrong-token-0123456789"
    code, out, err = invoke(*args, env=env)
    assert code == 3, out + err
    last = err.splitlines()[-1]  # after the -vv log lines
    assert last.startswith("jira-crm-sync: init --discover: jira: ")
    assert last.endswith("nothing was written")
    assert "wrong-token-0123456789" not in out + err
    assert not path.exists()


def test_projects_out_of_reach_are_refused(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    args, env = init_command(box, path)
    code, out, err = invoke(*args, "--projects", "APOLLO,NOPE", env=env)
    assert code == 2, out + err
    assert "--projects names NOPE, which this user cannot browse (in reach: APOLLO, ORION)" in err
    assert not path.exists()
    code, out, err = invoke(*args, "--projects", "ORION", env=env)
    assert code == 0, out + err
    assert load_config(path, environ=env).jira.projects == ["ORION"]


def test_check_online_suggests_what_discovery_finds(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    write_sandbox_config(box, path)
    text = path.read_text(encoding="utf-8")
    for old, new in (
        ('jira_field = "Salesforce Account"', 'jira_field = "SF Kunde"'),
        ('segment_field = "Segment__c"', 'segment_field = "Kundengruppe__c"'),
        ('object = "Jira_Project_Status__c"', 'object = "Projektstatus__c"'),
    ):
        assert text.count(old) == 1
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")

    code, out, _err = invoke("--config", str(path), "check", "--online")

    assert code == 2
    fails = {line.split(":")[0]: line for line in out.splitlines() if line.startswith("FAIL")}
    assert (
        'did you mean "Salesforce Account" (customfield_10100: text field; '
        in (fails["FAIL  jira field SF Kunde"])
    )
    assert "sampled issues hold an Account Id" in fails["FAIL  jira field SF Kunde"]
    assert (
        'did you mean "Segment__c" (picklist; 20 of 20 sampled Accounts hold a value'
        in (fails["FAIL  salesforce field Account.Kundengruppe__c"])
    )
    assert (
        'did you mean "Jira_Project_Status__c" (holds all 15 report fields; External ID '
        "Jira_Sync_Key__c)?"
    ) in fails["FAIL  salesforce object Projektstatus__c"]


def test_the_projects_question_offers_those_in_reach(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    args, env = init_command(box, path)
    asked = [a if a != "--no-input" else "--prompt" for a in args]
    code, out, err = invoke(*asked, env=env, input="NOPE\n\n")
    assert code == 0, out + err
    assert "Jira project keys in scope, comma-separated [APOLLO,ORION]:" in err
    assert "names NOPE, which this user cannot browse" in err  # and asked again
    assert load_config(path, environ=env).jira.projects == ["APOLLO", "ORION"]


def test_a_failure_midway_writes_nothing(box: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    args, env = init_command(box, path)
    # Signed in, then a proxy's login page instead of the project list.
    box.jira_app.faults.add(Fault(kind="html", status=200, endpoint="/project", count=5))
    code, out, err = invoke(*args[1:], env=env)
    assert code == 3, out + err
    assert err.startswith("jira-crm-sync: init --discover: jira: ") and err.count("\n") == 1
    assert "nothing was written" in err and not path.exists()
