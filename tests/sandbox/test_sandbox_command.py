"""The real ``jira-crm-sync sandbox`` entry point, as a process: ready line, curl with the
printed CA, --write-config, clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ENTRY = Path(sys.executable).parent / "jira-crm-sync"
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "config.example.toml"
READY_KEYS = [
    "jira_url",
    "jira_email",
    "jira_token",
    "salesforce_instance_url",
    "salesforce_access_token",
    "ca_bundle",
]
EXTRA_READY_KEYS = ["salesforce_client_id", "salesforce_client_secret", "salesforce_refresh_token"]


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    if not selector.select(timeout):
        proc.kill()
        raise AssertionError(f"no ready line within {timeout}s; stderr: {proc.stderr!r}")
    return proc.stdout.readline()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any], Path]]:
    config = tmp_path / "conf" / "sandbox.toml"
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    proc = subprocess.Popen(
        [
            str(ENTRY),
            "sandbox",
            "--issues",
            "60",
            "--accounts",
            "12",
            "--seed",
            "5",
            "--write-config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = _read_line(proc, 60)
        yield proc, json.loads(line), config
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _curl(ready: dict[str, Any], *args: str) -> Any:
    out = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", "--cacert", ready["ca_bundle"], *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return json.loads(out.stdout)


def _key_paths(table: dict[str, Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            paths.add(path)
            paths |= _key_paths(value, path + ".")
        else:
            paths.add(path)
    return paths


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_ready_line_curl_config_and_sigterm(
    running: tuple[subprocess.Popen[str], dict[str, Any], Path],
) -> None:
    proc, ready, config = running
    # SPEC section 8's keys first, as written; then the Basic sign-in and what
    # refresh_token clients need.
    assert list(ready) == [*READY_KEYS, "jira_username", "jira_password", *EXTRA_READY_KEYS]
    assert (ready["jira_username"], ready["jira_password"]) == (  # Cloud's Basic sign-in
        ready["jira_email"],
        ready["jira_token"],
    )
    assert ready["jira_url"].startswith("https://127.0.0.1:")
    assert ready["salesforce_instance_url"].startswith("https://127.0.0.1:")
    assert Path(ready["ca_bundle"]).is_file()

    jira = _curl(
        ready,
        "-u",
        f"{ready['jira_email']}:{ready['jira_token']}",
        f"{ready['jira_url']}/rest/api/3/search/jql?jql=created%20%3E%3D%20-3650d&fields=summary&maxResults=5",
    )
    assert len(jira["issues"]) == 5 and "summary" in jira["issues"][0]["fields"]
    accounts = _curl(
        ready,
        "-H",
        f"Authorization: Bearer {ready['salesforce_access_token']}",
        f"{ready['salesforce_instance_url']}/services/data/v59.0/query?q=SELECT+Id,Name+FROM+Account",
    )
    assert accounts["totalSize"] == 12
    stats = _curl(ready, f"{ready['jira_url']}/_sandbox/stats")
    assert stats["by_endpoint"] == {"GET /rest/api/3/search/jql": 1}

    # --write-config: every key of config.example.toml, pointing at this sandbox, 0600.
    assert config.stat().st_mode & 0o777 == 0o600
    written = tomllib.loads(config.read_text(encoding="utf-8"))
    example = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    # Credentials differ by auth kind (the example shows JWT, the sandbox OAuth).
    credentials = {"crm.salesforce.username", "crm.salesforce.private_key_file"}
    missing = _key_paths(example) - _key_paths(written) - credentials
    assert not missing, f"--write-config lacks keys of config.example.toml: {sorted(missing)}"
    assert written["jira"]["url"] == ready["jira_url"]
    assert written["jira"]["api_token"] == ready["jira_token"]
    assert written["crm"]["salesforce"]["instance_url"] == ready["salesforce_instance_url"]
    assert written["jira"]["ca_bundle"] == ready["ca_bundle"]

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert not Path(ready["ca_bundle"]).exists()  # its temporary CA directory is removed


def test_refuses_a_non_loopback_host() -> None:
    result = subprocess.run(
        [str(ENTRY), "sandbox", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr
    assert result.stdout == ""


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_a_localised_older_server_and_the_config_it_writes(tmp_path: Path) -> None:
    """``--locale zh --jira-mode server``: /field in Chinese without ``parent``, and a
    written config naming the fields as that site does, which `check --online` accepts."""
    config = tmp_path / "zh.toml"
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    args = ["--issues", "40", "--accounts", "8", "--write-config", str(config)]
    with subprocess.Popen(
        [str(ENTRY), "sandbox", "--locale", "zh", "--jira-mode", "server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            ready = json.loads(_read_line(proc, 60))
            fields = _curl(
                ready,
                "-H",
                f"Authorization: Bearer {ready['jira_token']}",
                f"{ready['jira_url']}/rest/api/2/field",
            )
            names = {f["id"]: f["name"] for f in fields}
            assert "parent" not in names
            assert (
                names["customfield_10014"] == "史诗链接"
                and names["customfield_10016"] == "故事点数"
            )
            assert list(names.values()).count("史诗链接") == 2
            written = tomllib.loads(config.read_text(encoding="utf-8"))
            assert written["progress"]["story_points_field"] == "故事点数"
            assert written["jira"]["deployment"] == "server"
            check = subprocess.run(
                [str(ENTRY), "--config", str(config), "check", "--online", "--json"],
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
                check=False,
            )
            assert check.returncode == 0, check.stdout + check.stderr
            detail = {c["name"]: c["detail"] for c in json.loads(check.stdout)["checks"]}
            assert '"史诗链接" (customfield_10014, Epic Link)' in detail["jira epic link"]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def test_refuses_an_unknown_locale() -> None:
    result = subprocess.run(
        [str(ENTRY), "sandbox", "--locale", "fr"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "fr" in result.stderr and result.stdout == ""


def test_crm_hubspot_serves_a_portal_of_the_same_world_and_a_config_that_runs(
    tmp_path: Path,
) -> None:
    config = tmp_path / "hubspot.toml"
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    proc = subprocess.Popen(
        [
            *(str(ENTRY), "sandbox", "--issues", "60", "--accounts", "12", "--seed", "5"),
            *("--crm", "hubspot", "--write-config", str(config)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        ready = json.loads(_read_line(proc, 60))
        # SPEC section 8's keys stay; the portal's follow.
        assert list(ready)[: len(READY_KEYS)] == READY_KEYS
        assert ready["hubspot_url"].startswith("https://127.0.0.1:")
        assert ready["hubspot_token"].startswith("pat-")
        companies = _curl(
            ready,
            "-H",
            f"Authorization: Bearer {ready['hubspot_token']}",
            f"{ready['hubspot_url']}/crm/v3/objects/companies?limit=100",
        )
        assert len(companies["results"]) == 12  # the Salesforce org's accounts, as companies
        assert config.stat().st_mode & 0o777 == 0o600
        written = tomllib.loads(config.read_text(encoding="utf-8"))
        assert written["crm"]["kind"] == "hubspot" and "salesforce" not in written["crm"]
        assert written["crm"]["hubspot"]["base_url"] == ready["hubspot_url"]
        assert written["crm"]["hubspot"]["ca_bundle"] == ready["ca_bundle"]
        run = subprocess.run(
            [str(ENTRY), "--config", str(config), "run"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert "hubspot_records" in run.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
