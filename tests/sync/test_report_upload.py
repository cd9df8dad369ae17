"""[report] upload: each customer's HTML report attached to its account (a Salesforce File)
once per period, idempotent across a crash between the upload and its record, counted in
the cycle's CRM budget, reported (not fatal) when refused, and off by default."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.sandbox.server import Tls
from sync.config import ConfigFileError, load_config
from sync.report.upload import file_name, period_of
from sync.store import repo
from sync.store.repo.uploads import uploads_of_period
from tests.sync.e2e import (
    ANCHOR,
    KillPoint,
    KillSwitch,
    SyncEnv,
    calls,
    in_process_env,
    make_sandbox,
    sync_env,
)

CREATE = "salesforce POST /services/data/v{version}/sobjects/{sobject}"
QUERY = "salesforce GET /services/data/v{version}/query"
WEEK = "2026-W10"  # the in-process clock starts on Monday 2026-03-02


@pytest.fixture
def env(tmp_path: Path, tls: Tls) -> Iterator[SyncEnv]:
    with in_process_env(
        f"sqlite:///{tmp_path / 'state.db'}", tmp_path, tls, issues=80, accounts=10
    ) as opened:
        yield opened


def _files(env: SyncEnv) -> list[dict[str, object]]:
    return env.box.salesforce.records("ContentVersion")


def _linked(env: SyncEnv) -> list[str]:
    with env.store.read() as conn:
        return sorted({link.customer_id for link in repo.get_links(conn)})


def _creates(result_calls: dict[str, dict[str, object]]) -> int:
    by_endpoint = result_calls["salesforce"]["by_endpoint"]
    assert isinstance(by_endpoint, dict)
    return sum(n for key, n in by_endpoint.items() if key.startswith("POST") and "sobjects/" in key)


def test_periods() -> None:
    monday = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    sunday = datetime(2026, 3, 8, 23, 59, tzinfo=UTC)
    assert period_of(sunday, "weekly") == (WEEK, monday)
    assert period_of(sunday, "daily") == ("2026-03-08", datetime(2026, 3, 8, tzinfo=UTC))
    assert period_of(sunday, "monthly") == ("2026-03", datetime(2026, 3, 1, tzinfo=UTC))
    assert period_of(datetime(2027, 1, 1, tzinfo=UTC), "weekly")[0] == "2026-W53"


def test_once_per_period_each_customer_gets_its_own_report(env: SyncEnv) -> None:
    env.edit_config("upload = false", "upload = true")
    first = env.cycle()
    assert first.exit_code == 0, first.message
    linked = _linked(env)
    assert linked and first.written["report_uploads"] == len(linked)
    files = _files(env)
    assert sorted(str(f["FirstPublishLocationId"]) for f in files) == linked
    names = {str(a["Id"]): str(a["Name"]) for a in env.box.salesforce.records("Account")}
    for record in files:
        account = str(record["FirstPublishLocationId"])
        assert record["Title"] == f"Progress report {WEEK}"
        assert record["PathOnClient"] == file_name(WEEK, account)
        data = record["VersionData"]  # the sandbox keeps the decoded bytes
        assert isinstance(data, bytes)
        html = data.decode("utf-8")
        assert html.startswith("<!DOCTYPE html>") and names[account] in html
        others = [n for a, n in names.items() if a != account and a in linked]
        assert not any(f'id="customer-{a}"' in html for a in linked if a != account), others
    # Counted against this cycle's CRM calls: one file query, one create per customer.
    assert _creates(first.calls) == len(linked) == calls(env.box).count(CREATE)
    with env.store.read() as conn:
        assert sorted(uploads_of_period(conn, WEEK)) == linked
        assert (
            repo.calls_today(conn, "salesforce", env.clock().date())
            == first.calls["salesforce"]["total"]
        )

    env.clock.advance(days=2)  # same ISO week: nothing more, and no call spent on it
    again = env.cycle()
    assert again.exit_code == 0 and "report_uploads" not in again.written
    assert calls(env.box).count(CREATE) == 0 and len(_files(env)) == len(linked)

    env.clock.advance(days=6)  # the next week
    next_week = env.cycle()
    assert next_week.written["report_uploads"] == len(linked)
    assert len(_files(env)) == 2 * len(linked)
    assert {f["Title"] for f in _files(env)} == {
        f"Progress report {WEEK}",
        "Progress report 2026-W11",
    }


def test_a_refused_upload_is_reported_and_retried_next_cycle(env: SyncEnv) -> None:
    env.edit_config("upload = false", "upload = true")
    env.cycle()  # nothing refused yet: every customer has its file
    env.edit_config('period = "weekly"', 'period = "daily"')
    env.clock.advance(days=1)
    victim = _linked(env)[0]
    env.box.salesforce.add_validation_rule(
        "ContentVersion",
        lambda record: record.get("FirstPublishLocationId") == victim,
        "Files on this account need approval",
    )
    refused = env.cycle()
    assert refused.exit_code == 1  # finished, one record refused: like a parked write
    (failure,) = refused.failed
    assert failure["side"] == "salesforce" and victim in failure["record"]
    assert "Files on this account need approval" in failure["error"]
    assert refused.written["report_uploads"] == len(_linked(env)) - 1
    env.box.salesforce.clear_validation_rules()
    env.clock.advance(minutes=30)
    retried = env.cycle()
    assert retried.exit_code == 0 and retried.written["report_uploads"] == 1
    day = period_of(env.clock(), "daily")[0]
    assert (
        sum(
            1
            for f in _files(env)
            if f["FirstPublishLocationId"] == victim and day in str(f["Title"])
        )
        == 1
    )


def test_off_by_default_then_stopping_cleanly_at_the_budget_and_resuming(env: SyncEnv) -> None:
    assert env.config.report.upload is False
    first = env.cycle()
    assert first.exit_code == 0 and "report_uploads" not in first.written
    assert _files(env) == [] and calls(env.box).count(CREATE) == 0
    env.clock.advance(minutes=10)
    quiet = env.cycle()  # what a no-change cycle costs on the CRM side
    linked = _linked(env)
    assert len(linked) >= 3
    budget = int(quiet.calls["salesforce"]["total"]) + 1 + 2  # the file query, two uploads
    env.edit_config("crm_calls_per_cycle = 5000", f"crm_calls_per_cycle = {budget}")
    env.edit_config("upload = false", "upload = true")
    rounds = 0
    while len(_files(env)) < len(linked):
        rounds += 1
        assert rounds <= len(linked), "uploads made no progress"
        env.clock.advance(minutes=10)
        result = env.cycle()
        assert result.exit_code == 0, result.message
        assert int(result.calls["salesforce"]["total"]) <= budget
        if len(_files(env)) < len(linked):
            assert result.status == "budget"
    assert sorted(str(f["FirstPublishLocationId"]) for f in _files(env)) == linked


def test_a_crash_between_upload_and_record_never_uploads_twice(tmp_path: Path, tls: Tls) -> None:
    box = make_sandbox(80, 10, seed=2, anchor=ANCHOR)
    with sync_env(box, tmp_path, f"sqlite:///{tmp_path / 'state.db'}", tls) as env:
        env.edit_config("upload = false", "upload = true")
        switch = KillSwitch(box)
        switch.install()
        try:
            # Killed right after Salesforce stored the second file, before we recorded it.
            switch.arm(
                KillPoint("second upload", "salesforce", 2, CREATE.split(" ", 1)[1], when="after")
            )
            code, _out, _err = switch.run(env, "run")
            assert code == -9 and switch.fired
            assert len(_files(env)) == 2
            switch.arm(None)
            code, out, err = switch.run(env, "run")
            assert code == 0, err
        finally:
            switch.uninstall()
        linked = _linked(env)
        accounts = sorted(str(f["FirstPublishLocationId"]) for f in _files(env))
        assert accounts == linked  # one file each: the two from before the kill found again
        period = period_of(datetime.now(UTC), "weekly")[0]
        with env.store.read() as conn:
            assert sorted(uploads_of_period(conn, period)) == linked
        assert "written:" in out


def test_the_title_must_name_the_period(env: SyncEnv) -> None:
    original = env.config_path.read_text(encoding="utf-8")
    default = 'title = "Progress report {period}"'
    for title, problem in (
        ("Weekly report {customer}", "must contain {period}"),
        ("Report {period} {owner}", "unknown placeholder {owner}"),
        ("Report {period", "unbalanced"),
    ):
        env.config_path.write_text(original.replace(default, f'title = "{title}"'), "utf-8")
        with pytest.raises(ConfigFileError) as info:
            load_config(env.config_path)
        assert any(p.startswith("report.title:") and problem in p for p in info.value.problems)
    env.config_path.write_text(original, encoding="utf-8")
    env.edit_config(default, 'title = "{customer}: {period}"')
    assert env.config.report.title == "{customer}: {period}"
