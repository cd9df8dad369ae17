"""The benchmark at a tiny size, through its real entry point (``python -m bench``, cycles
in child processes over HTTPS): the JSON has every scenario and figure, the minimum-call
model never exceeds what was really needed, the product's own call meter agrees with the
sandbox's counts, and the SPEC section 9 call targets hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.model import (
    NO_CHANGE_MAX_READS,
    Comparison,
    Work,
    bucket_of,
    jira_emails_avoided,
    judge,
    pages,
    salesforce_writes,
)

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = [
    "full_first_sync",
    "settle_after_full",
    "no_change",
    "changed_1pct",
    "settle_after_changes",
    "deletes_only",
    "report",
    "reconcile",
]
FIGURES = (
    "wall_seconds",
    "cpu_seconds",
    "peak_rss_mb",
    "merge_seconds",
    "by_endpoint",
    "work",
    "jira_emails_avoided",
)


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    # The Salesforce scenarios (test_bench_hubspot.py runs the HubSpot ones).
    args = ["--sizes", "200", "--crm", "salesforce", "--json-out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "full_first_sync" in done.stderr  # the table
    parsed: dict[str, Any] = json.loads(done.stdout)
    assert json.loads(out.read_text(encoding="utf-8")) == parsed
    return parsed


def _scenarios(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (size,) = document["sizes"]
    assert (size["issues"], size["accounts"]) == (200, 40)
    return {s["scenario"]: s for s in size["scenarios"]}


def test_every_scenario_reports_every_figure(document: dict[str, Any]) -> None:
    scenarios = _scenarios(document)
    assert list(scenarios) == SCENARIOS
    for name in SCENARIOS:
        s = scenarios[name]
        missing = [f for f in FIGURES if f not in s]
        assert not missing, (name, missing)
        assert s["wall_seconds"] > 0 and s["cpu_seconds"] > 0 and s["peak_rss_mb"] > 30
        assert set(s["by_endpoint"]) == {"jira", "salesforce"}
    assert scenarios["full_first_sync"]["merge_issues_per_second"] > 0
    assert scenarios["full_first_sync"]["work"]["jira_issues_to_read"] == 200
    for key in ("total_minimum", "peak_rss_mb", "merge_issues_per_second"):
        assert key in document["figures"]


def test_the_minimum_never_exceeds_the_calls_made(document: dict[str, Any]) -> None:
    for name, s in _scenarios(document).items():
        assert s["total_minimum"] <= s["total_actual"], name
        for bucket, row in s["by_bucket"].items():
            assert row["minimum"] <= row["actual"], (name, bucket, row)
        # The sandbox's count and the product's own meter agree.
        assert s["product_meter_total"] == s["total_actual"], name
        assert s["reads"] + s["writes"] == s["total_actual"], name


def test_the_call_targets_hold(document: dict[str, Any]) -> None:
    scenarios = _scenarios(document)
    full = scenarios["full_first_sync"]
    slack = max(1.05 * full["total_minimum"], full["total_minimum"] + 1)  # bench.model.judge
    assert full["total_actual"] <= slack, full["by_bucket"]
    quiet = scenarios["no_change"]
    assert quiet["reads"] <= NO_CHANGE_MAX_READS and quiet["writes"] == 0, quiet["by_endpoint"]
    # Deletes are found by one key listing (5000 keys a page), not by re-reading issues.
    deletes = scenarios["deletes_only"]
    assert deletes["by_bucket"]["jira search"]["actual"] == 2
    assert deletes["work"]["key_scan_due"] is True
    # Reconcile reads everything once: no write, and nothing beyond the minimum.
    assert scenarios["reconcile"]["writes"] == 0
    assert scenarios["reconcile"]["total_actual"] == scenarios["reconcile"]["total_minimum"]
    # The report reads the store alone: no call at all, and a document written.
    report = scenarios["report"]
    assert (report["total_actual"], report["total_minimum"]) == (0, 0)
    assert report["pulled"]["html_bytes"] > 10_000
    assert document["targets_missed"] == []


def test_the_model_counts_pages_and_flags_misses() -> None:
    assert (pages(0, 100), pages(100, 100), pages(101, 100)) == (1, 1, 2)
    work = Work(
        jira_read=250,
        crm_read={"Account": 4001, "Case": 0},
        scope=12_000,
        key_scan=True,
        first=True,
        jira_written=7,
        crm_written=401,
    )
    minimum = work.minimum()
    assert minimum["jira search"] == 3 + 3  # 250 issues at 100, 12,000 keys at 5000
    assert minimum["salesforce queries"] == 1 + 2  # one Composite, two more Account pages
    assert minimum["salesforce writes"] == 3
    # Past 1,400 records one Bulk API 2.0 job (7 calls) beats collections of 200.
    assert [salesforce_writes(n) for n in (0, 1, 1400, 1401, 100_000)] == [0, 1, 7, 7, 7]
    assert (minimum["jira metadata"], minimum["salesforce metadata"]) == (3, 3)
    assert bucket_of("jira", "PUT /rest/api/2/issue/{key}") == "jira issue writes"
    assert bucket_of("salesforce", "POST /services/data/v{version}/composite") == (
        "salesforce queries"
    )
    assert bucket_of("salesforce", "GET /services/data/v{version}/jobs/ingest/{job}") == (
        "salesforce writes"
    )
    quiet = Comparison({"jira search": 3, "salesforce login": 1}, {"jira search": 1}, 4, 0)
    assert judge("no_change", quiet) == ["reads 4 > 3"]
    full = Comparison({"jira search": 106}, {"jira search": 100}, 106, 0)
    assert judge("full_first_sync", full) == ["calls 106 > 1.05 x minimum 100"]
    assert judge("full_first_sync", Comparison({"x": 105}, {"x": 100}, 105, 0)) == []
    assert judge("full_first_sync", Comparison({"x": 14}, {"x": 13}, 14, 0)) == []  # 1 call
    assert judge("full_first_sync", Comparison({"x": 15}, {"x": 13}, 15, 0)) != []


def test_the_jira_write_floor_counts_bulk_edits_where_the_api_allows() -> None:
    """Issues sharing one change without comments: ceil(n / 1000) bulk edits and a progress
    read each, or a PUT each when fewer; every other changed issue, one PUT."""
    work = Work(
        jira_read=0,
        crm_read={},
        scope=0,
        key_scan=False,
        first=False,
        jira_written=2241 + 2 + 9,
        crm_written=0,
        jira_groups=(2241, 2),
    )
    assert work.jira_writes() == (2 + 9, 2 * 3)  # a group of 2: 2 PUTs, not 2 calls of bulk
    assert work.minimum()["jira bulk edits"] == 6
    assert work.minimum()["jira issue writes"] == 11
    server = Work(0, {}, 0, False, False, 12, 0, jira_groups=(12,), bulk=False)
    assert server.jira_writes() == (12, 0)  # Data Center: no bulk edit
    assert bucket_of("jira", "POST /rest/api/3/bulk/issues/fields") == "jira bulk edits"
    assert bucket_of("jira", "GET /rest/api/3/bulk/queue/{taskId}") == "jira bulk edits"


def test_emails_avoided_are_the_issues_written_without_a_put_of_their_own() -> None:
    calls = {
        "jira": {"PUT /rest/api/2/issue/{key}": 3, "POST /rest/api/3/bulk/issues/fields": 1},
        "salesforce": {"PATCH /composite/sobjects": 2},
    }
    assert jira_emails_avoided(calls, 1203) == 1200
    assert jira_emails_avoided({"jira": {"PUT /rest/api/2/issue/{key}": 5}}, 5) == 0
    assert jira_emails_avoided({}, 0) == 0


def test_a_first_sync_on_cloud_avoids_an_email_per_bulk_edited_issue(
    document: dict[str, Any],
) -> None:
    first = _scenarios(document)["full_first_sync"]
    jira = first["by_endpoint"]["jira"]
    puts = sum(n for e, n in jira.items() if e.startswith("PUT ") and "/issue/" in e)
    assert any("/bulk/" in e for e in jira), jira  # the sandbox site is Cloud: bulk edits
    assert first["jira_emails_avoided"] == first["work"]["jira_issues_to_write"] - puts > 0
