"""`jira-crm-sync report` (SPEC section 4) over a generated world after real sync cycles.

One world is synced for the module, over three days of the sandbox's clock, with cases the
report must handle: a customer named in Chinese whose issue summary carries a ``<script>``
and Markdown table syntax, a customer without a satisfaction score, an empty project (a
pair whose only linked work is an epic), a falling score and work getting done (burn-up).
Every format is rendered from the store with no network call; the real CLI writes files.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import pytest
from typer.testing import CliRunner

from connectors.sandbox.server import Tls
from connectors.sandbox.world import category_changed
from mappings.dates import utc_date
from sync.cli import app
from sync.report import ReportError, render_report
from sync.report.build import build_report
from sync.report.render import markdown_text
from sync.store import open_store
from tests.sync.e2e import (
    CATEGORY,
    CLI,
    SyncEnv,
    calls,
    cli_env,
    expected,
    in_process_env,
    reset_calls,
)

SCRIPT = '<script>alert("pwned")</script> | *bold* 华信'
CHINESE_NAME = "华信科技有限公司（测试）"
#: One unbroken word of 200 characters: it must wrap, not push the page sideways.
LONG_NAME = "Donaudampfschifffahrtsgesellschaft" * 5 + "Kapitaenskajuetenschluessel"[:30]
LONG_SUMMARY = "https://docs.example.com/" + "very-long-path-segment/" * 12 + "?q=" + "x" * 60
#: A name that would climb out of the --per-customer directory if used as a file name.
HOSTILE_NAME = "../../etc/passwd\\..\\CON: <Ünïcode> *?"


@dataclass
class World:
    """The synced environment and the records the tests look for."""

    env: SyncEnv
    chinese: str  # account renamed in Chinese; its issue carries SCRIPT; its CSAT falls
    chinese_project: str
    script_issue: str
    unscored: str  # account without a satisfaction score, named LONG_NAME
    empty: str  # account whose only linked work is an epic, named HOSTILE_NAME
    empty_project: str
    done_on_day_two: tuple[str, ...]
    long_issue: str  # a blocked issue summarised LONG_SUMMARY


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("report")
    with in_process_env(f"sqlite:///{directory / 'state.db'}", directory, tls) as env:
        box = env.box
        want = expected(box, env.clock().date())
        pairs = sorted(want.reports.items(), key=lambda kv: (-kv[1]["Issues_Total__c"], kv[0]))
        chinese_project, chinese = pairs[0][0].split(":")
        unscored = next(acc for pair, _ in pairs if (acc := pair.split(":")[1]) != chinese)
        linked = {pair.split(":")[1] for pair, _ in pairs}
        empty = next(a["Id"] for a in box.salesforce.records("Account") if a["Id"] not in linked)
        open_own = [
            key
            for key, issue in sorted(box.jira.issues.items())
            if issue.account_id == chinese
            and issue.project_key == chinese_project
            and issue.issue_type != "Epic"
            and CATEGORY[issue.status] != "done"
        ]
        script_issue, long_issue, *others = open_own
        box.salesforce.update_record("Account", chinese, Name=CHINESE_NAME, CSAT__c=4.6)
        box.salesforce.update_record("Account", unscored, Name=LONG_NAME, CSAT__c=None)
        box.jira.update_issue(long_issue, summary=LONG_SUMMARY, status="Blocked")
        box.jira.update_issue(
            script_issue,
            summary=SCRIPT,
            status="Blocked",
            due=env.clock().date() - timedelta(days=3),
        )
        empty_project = sorted(p.key for p in box.world.projects)[-1]
        box.jira.create_issue(empty_project, "Epic: 准备工作", issue_type="Epic", account_id=empty)
        box.salesforce.update_record("Account", empty, Name=HOSTILE_NAME)
        assert env.cycle().exit_code == 0
        env.clock.advance(days=1)
        done = tuple(others[:2])
        for key in done:
            box.jira.update_issue(key, status="Done")
        box.salesforce.update_record("Account", chinese, CSAT__c=3.1)
        assert env.cycle().exit_code == 0
        env.clock.advance(days=1)
        assert env.cycle().exit_code == 0
        yield World(
            env,
            chinese,
            chinese_project,
            script_issue,
            unscored,
            empty,
            empty_project,
            done,
            long_issue,
        )


def _section(html: str, element_id: str) -> str:
    """The HTML of the element with ``id`` up to the next element of the same class."""
    start = html.index(f'id="{element_id}"')
    kind = "customer" if element_id.startswith("customer-") else "project"
    following = html.find(f'<div class="{kind}', start)
    return html[start : following if following != -1 else len(html)]


def test_every_format_renders_from_the_store_without_a_network_call(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = world.env
    reset_calls(env.box)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the report opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    out = {
        fmt: render_report(env.store, env.config, fmt=fmt) for fmt in ("html", "markdown", "text")
    }
    monkeypatch.undo()
    assert calls(env.box).reads == calls(env.box).writes == 0
    for fmt, text in out.items():
        assert CHINESE_NAME in text, fmt
        assert "no satisfaction data" in text, fmt
        assert f"No work items are linked to this customer in {world.empty_project} yet" in text
        assert world.script_issue in text, fmt
    assert out["html"].startswith("<!DOCTYPE html>")
    assert out["markdown"].startswith("# Progress report\n")
    assert out["text"].startswith("Progress report\n")


def test_html_is_self_contained_and_escapes_untrusted_text(world: World) -> None:
    html = render_report(world.env.store, world.env.config, fmt="html")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; | *bold* 华信" in html
    # Nothing fetched: no external stylesheet, font, image or script; CSS inline.
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html, re.IGNORECASE)
    assert "@import" not in html and "url(" not in html
    assert html.count("<style>") == 1 and "@media print" in html
    # Long words wrap (the browser test measures it where chromium is installed).
    assert "overflow-wrap: anywhere" in html and "table-layout: fixed" in html
    assert 'src="' not in html
    section = _section(html, f"customer-{world.chinese}")
    assert section.count("<svg") >= 2  # the satisfaction trend and a burn-up per project
    empty = _section(html, f"project-{world.empty_project}-{world.empty}")
    assert "No work items are linked" in empty and "<svg" in empty


def test_markdown_escapes_table_syntax_and_html(world: World) -> None:
    md = render_report(world.env.store, world.env.config, fmt="markdown")
    assert "<script" not in md
    assert r'&lt;script&gt;alert("pwned")&lt;/script&gt; \| \*bold\* 华信' in md
    row = next(line for line in md.splitlines() if line.startswith(f"| {world.script_issue} |"))
    header = next(line for line in md.splitlines() if line.startswith("| Issue | Summary |"))
    unescaped = re.compile(r"(?<!\\)\|")
    assert len(unescaped.findall(row)) == len(unescaped.findall(header)) == 7


def test_burnup_and_trend_come_from_the_stored_history(world: World) -> None:
    env = world.env
    doc = build_report(env.store, env.config, customer=world.chinese)
    (customer,) = doc.customers
    pair = next(p for p in customer.projects if p.progress.project_key == world.chinese_project)
    synced = [point for point in pair.burnup if not point.rebuilt]
    days = [point.day for point in synced]
    assert len(days) == 3 and days == sorted(days)
    first, _, last = synced
    assert last.done == first.done + len(world.done_on_day_two)
    # Rebuilt history before the first sync, never on or after it.
    assert all(p.day < first.day for p in pair.burnup if p.rebuilt)
    assert customer.trend.direction == "down"
    assert customer.trend.words.startswith("down 1.5 since")
    assert customer.customer.name == CHINESE_NAME
    assert customer.flag is not None and customer.flag.level == "at_risk"
    assert world.script_issue in [line.key for line in pair.blocked]
    assert world.script_issue in [line.key for line in pair.overdue]
    text = render_report(env.store, env.config, fmt="text", customer=world.chinese)
    assert "down 1.5 since" in text and "Burn-up (done/total):" in text


def test_a_first_report_has_burnup_history(tmp_path: Path, tls: Tls) -> None:
    """After one sync the burn-up already shows the weeks before it: scope from creation
    dates, done from the times items entered the done category (also in the project whose
    Done sets no resolution); the stored snapshot is the last point."""
    with in_process_env(f"sqlite:///{tmp_path / 'state.db'}", tmp_path, tls) as env:
        assert env.cycle().exit_code == 0
        box, today = env.box, utc_date(env.clock())
        want = expected(box, today)
        doc = build_report(env.store, env.config)
        text = render_report(env.store, env.config, fmt="text")
        html = render_report(env.store, env.config, fmt="html")
    pairs = [p for c in doc.customers for p in c.projects if p.progress.total > 0]
    assert {p.progress.project_key for p in pairs} == {p.key for p in box.world.projects}
    issues = box.jira.issues
    for pair in pairs:
        report = pair.progress
        *history, last = pair.burnup
        assert (last.day, last.done, last.total, last.rebuilt) == (
            today,
            report.done,
            report.total,
            False,
        )
        assert len(history) >= 2 and all(p.rebuilt and p.day < today for p in history)
        keys = [
            k
            for k in want.links
            if issues[k].project_key == report.project_key
            and issues[k].issue_type != "Epic"
            and report.external_id in want.pairs_of(k, report.project_key)
        ]
        # Counted from the sandbox's own records, independently of mappings/.
        for point in history:
            created = sum(utc_date(issues[k].created) <= point.day for k in keys)
            done = sum(
                CATEGORY[issues[k].status] == "done"
                and utc_date(category_changed(issues[k])) <= point.day
                for k in keys
            )
            assert (point.total, point.done) == (created, done), (report.external_id, point)
        assert history[-1].done > 0
    assert "rebuilt from creation and done dates" in text
    assert "rebuilt from the items" in html and "synced from here" in html


def test_filters_by_customer_and_project(world: World) -> None:
    env = world.env
    html = render_report(env.store, env.config, fmt="html", customer=world.unscored)
    assert html.count('class="customer') == 1 and f'id="customer-{world.unscored}"' in html
    only = render_report(env.store, env.config, fmt="html", project=world.chinese_project)
    keys = set(re.findall(r'id="project-([A-Z0-9]+)-', only))
    assert keys == {world.chinese_project}
    both = build_report(
        env.store, env.config, customer=world.chinese, project=world.chinese_project.lower()
    )
    assert [p.progress.project_key for c in both.customers for p in c.projects] == [
        world.chinese_project
    ]
    # A customer named with nothing linked still gets its page; unnamed, it is only counted.
    everyone = build_report(env.store, env.config)
    shown = {c.customer.id for c in everyone.customers}
    lonely = min(a["Id"] for a in env.box.salesforce.records("Account") if a["Id"] not in shown)
    (page,) = build_report(env.store, env.config, customer=lonely).customers
    assert page.customer.id == lonely and page.projects == ()
    assert "has no Jira project linked yet" in page.summary
    assert everyone.unlinked_customers == len(env.box.salesforce.records("Account")) - len(shown)


def test_segment_view_lists_groups_worst_first(world: World) -> None:
    env = world.env
    doc = build_report(env.store, env.config, by="segment")
    segments = [s.rollup for s in doc.segments]
    accounts = env.box.salesforce.records("Account")
    assert {s.segment for s in segments} == {a["Segment__c"] for a in accounts}
    assert sum(s.customers for s in segments) == len(accounts)
    worst = segments[0]
    assert all(worst.red >= s.red for s in segments)
    for segment in doc.segments:
        health = [r.health for r in segment.projects]
        order = {"red": 0, "amber": 1, "green": 2}
        assert health == sorted(health, key=order.__getitem__)
    for fmt in ("html", "markdown", "text"):
        text = render_report(env.store, env.config, fmt=fmt, by="segment")
        assert "worst first" in text
        for segment in segments:
            assert segment.segment in text
        assert CHINESE_NAME in text and world.chinese in text  # customers listed with ids
    narrowed = build_report(env.store, env.config, by="segment", customer=world.chinese)
    assert [s.rollup.customers for s in narrowed.segments] == [1]


def test_a_shared_part_of_a_project_says_what_its_numbers_cover(world: World) -> None:
    env = world.env
    doc = build_report(env.store, env.config)
    # crm_field accounts share the items no Jira value attributes: their pairs are subsets.
    partial = [
        (c, p)
        for c in doc.customers
        for p in c.projects
        if p.project_total is not None and 0 < p.progress.total < p.project_total
    ]
    assert partial
    for customer, pair in partial:
        r = pair.progress
        covered = f"{r.total} of the {pair.project_total} items of {r.project_name}"
        assert r.summary.startswith(f"{covered} linked to {customer.customer.name}: ")
        assert f"{covered} ({r.project_key}) linked to {customer.customer.name} " in (
            customer.summary
        )
    customer, pair = partial[0]
    md = render_report(env.store, env.config, fmt="markdown", by="segment")
    start = (
        f"| {markdown_text(pair.progress.project_name)} ({pair.progress.project_key}) "
        f"| {markdown_text(customer.customer.name)} |"
    )
    row = next(line for line in md.splitlines() if line.startswith(start))
    assert f"| {pair.progress.total} of {pair.project_total} |" in row


def test_no_satisfaction_data_gets_no_ok_badge(world: World) -> None:
    env = world.env
    (unscored,) = build_report(env.store, env.config, customer=world.unscored).customers
    assert unscored.customer.satisfaction is None
    assert unscored.flag is not None and unscored.flag.level == "ok"  # nothing against it
    html = render_report(env.store, env.config, fmt="html")
    section = _section(html, f"customer-{world.unscored}")
    assert "flag-ok" not in section
    assert '<span class="badge flag-none">No satisfaction data</span>' in section
    text = render_report(env.store, env.config, fmt="text")
    heading = next(line for line in text.splitlines() if line.startswith(LONG_NAME))
    assert heading.endswith("[NO SATISFACTION DATA]") and "[OK]" not in heading
    md = render_report(env.store, env.config, fmt="markdown")
    heading = next(line for line in md.splitlines() if line.startswith(f"## {LONG_NAME}"))
    assert heading.endswith(" — No satisfaction data") and "OK" not in heading
    groups = render_report(env.store, env.config, fmt="html", by="segment")
    row = next(
        line
        for line in groups.splitlines()
        if line.startswith(f"<tr><td>{LONG_NAME}</td><td>{world.unscored}</td>")
    )
    assert "flag-ok" not in row and "No satisfaction data" in row
    plain = render_report(env.store, env.config, fmt="text", by="segment")
    row = next(line for line in plain.splitlines() if world.unscored in line)
    assert row.split()[0:2] == ["no", "data"]


def test_the_trend_is_dated_when_the_score_was_measured(world: World) -> None:
    env = world.env
    doc = build_report(env.store, env.config)
    today = utc_date(doc.as_of)
    measured = {
        c.customer.id: min(utc_date(c.customer.satisfaction.measured_at), today)
        for c in doc.customers
        if c.customer.satisfaction is not None and c.customer.satisfaction.measured_at
    }
    assert any(day < today for day in measured.values())  # scores older than the last sync
    html = render_report(env.store, env.config, fmt="html")
    for c in doc.customers:
        if c.customer.id not in measured:
            continue
        day = measured[c.customer.id]
        assert c.scores[-1].day == day, c.customer.name
        if c.trend.direction == "new":
            assert c.trend.words == f"first measured {day}"
            section = _section(html, f"customer-{c.customer.id}")
            assert f"({day} " in section and f"first measured {day}" in section
        else:
            assert c.trend.since is not None and c.trend.since < day


def test_per_customer_writes_one_file_each_named_safely(world: World, tmp_path: Path) -> None:
    env = world.env
    runner = CliRunner()
    args = ["--config", str(env.config_path), "report"]
    out = tmp_path / "reports"
    result = runner.invoke(app, [*args, "--format", "markdown", "--per-customer", str(out)])
    assert result.exit_code == 0, result.output
    doc = build_report(env.store, env.config)
    files = sorted(out.iterdir())
    assert len(files) == len(doc.customers) and all(f.parent == out for f in files)
    assert sorted(Path(line) for line in result.stdout.splitlines()) == files
    assert f"{len(files)} customer report(s) written to {out}" in result.output
    names = {f.name for f in files}
    assert f"etc-passwd-con-unicode-{world.empty}.md" in names  # HOSTILE_NAME, contained
    assert f"customer-{world.chinese}.md" in names  # a name with no ASCII letters
    (long,) = (n for n in names if n.endswith(f"-{world.unscored}.md"))
    assert long == f"{LONG_NAME.lower()[:60]}-{world.unscored}.md"
    chinese = (out / f"customer-{world.chinese}.md").read_text(encoding="utf-8")
    headings = [line for line in chinese.splitlines() if line.startswith("## ")]
    assert len(headings) == 1 and CHINESE_NAME in headings[0]
    assert LONG_NAME not in chinese and world.unscored not in chinese
    # Narrowed like the report: one customer, in HTML.
    one = tmp_path / "one"
    result = runner.invoke(app, [*args, "--customer", world.chinese, "--per-customer", str(one)])
    assert result.exit_code == 0, result.output
    assert [f.name for f in one.iterdir()] == [f"customer-{world.chinese}.txt"]
    # A directory that cannot be written, or options that contradict it: exit 2, one line.
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    for extra in (
        ["--per-customer", str(blocker)],
        ["--per-customer", str(blocker / "below")],
        ["--per-customer", str(out), "-o", str(tmp_path / "x.md")],
        ["--per-customer", str(out), "--by", "segment"],
    ):
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert "Traceback" not in result.output and "--per-customer" in result.output


def test_unknown_customer_or_project_is_a_usage_error(world: World) -> None:
    env = world.env
    with pytest.raises(ReportError, match="no customer with id '001000000000000AAA'"):
        render_report(env.store, env.config, customer="001000000000000AAA")
    runner = CliRunner()
    args = ["--config", str(env.config_path), "report"]
    result = runner.invoke(app, [*args, "--customer", "nope"])
    assert result.exit_code == 2
    assert "no customer with id 'nope'" in result.output
    assert "report --by segment" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, [*args, "--project", "NOPE"])
    assert result.exit_code == 2 and "no Jira project 'NOPE'" in result.output
    result = runner.invoke(app, [*args, "--format", "pdf"])
    assert result.exit_code == 2


def test_the_real_cli_writes_each_format_with_no_remote_reachable(
    world: World, tmp_path: Path
) -> None:
    # A copy of the store and a config whose remotes are a closed port: nothing to reach.
    env = world.env
    source = env.store_url.removeprefix("sqlite:///")
    store_file = tmp_path / "state.db"
    env.store.close()
    shutil.copy(source, store_file)
    text = env.config_path.read_text(encoding="utf-8")
    text = re.sub(r"https://127\.0\.0\.1:\d+", "https://127.0.0.1:9", text)
    text = text.replace(env.store_url, f"sqlite:///{store_file}")
    config = tmp_path / "offline.toml"
    config.write_text(text, encoding="utf-8")
    out = tmp_path / "report.html"
    done = subprocess.run(
        [str(CLI), "--config", str(config), "report", "--format", "html", "-o", str(out)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and f"report written to {out}" in done.stderr
    assert CHINESE_NAME in out.read_text(encoding="utf-8")
    md = subprocess.run(
        [str(CLI), "--config", str(config), "report", "--format", "markdown", "--by", "segment"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert md.returncode == 0 and md.stdout.startswith("# Customer groups")
    bad = CliRunner().invoke(
        app, ["--config", str(config), "report", "-o", str(tmp_path / "no" / "x.html")]
    )
    assert bad.exit_code == 2 and "cannot write" in bad.output and "Traceback" not in bad.output


def test_an_empty_store_says_to_run_first(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    text = world.env.config_path.read_text(encoding="utf-8")
    missing = tmp_path / "missing.db"
    config = tmp_path / "fresh.toml"
    config.write_text(text.replace(world.env.store_url, f"sqlite:///{missing}"), encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config), "report"])
    assert result.exit_code == 2 and "no state store at" in result.output
    assert "jira-crm-sync run" in result.output and not missing.exists()
    open_store(f"sqlite:///{missing}").close()  # created, migrated, never synced
    result = runner.invoke(app, ["--config", str(config), "report"])
    assert result.exit_code == 2 and "no synced data yet" in result.output


def test_report_on_each_store_backend(store_url: str, tmp_path: Path, tls: Tls) -> None:
    with in_process_env(store_url, tmp_path, tls, issues=60, accounts=8, seed=5) as env:
        assert env.cycle().exit_code == 0
        env.clock.advance(days=1)
        assert env.cycle().exit_code == 0
        doc = build_report(env.store, env.config)
        assert doc.customers
        for project in (p for c in doc.customers for p in c.projects):
            assert len([point for point in project.burnup if not point.rebuilt]) == 2
        assert doc.last_synced is not None and doc.as_of == doc.last_synced
        assert doc.as_of.date() == date(2026, 3, 3)
        html = render_report(env.store, env.config, fmt="html", by="segment")
        assert "Customer groups" in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (`make test` installs it where apt-get runs "
    "as root); the browser check of the HTML report needs it",
)


def _chromium(page: Path, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``page`` loaded by headless chromium, with nothing reachable; its DOM on stdout."""
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing may be fetched from anywhere
            *options,
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@needs_chromium
def test_the_html_report_renders_in_headless_chromium(world: World, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report(world.env.store, world.env.config, fmt="html"), encoding="utf-8")
    done = _chromium(page, tmp_path)
    dom = done.stdout
    # The browser built the document: title, tables, inline SVG charts, the Chinese name,
    # and the issue summary as text (never as an element).
    assert '<h1 id="report-title">Progress report</h1>' in dom
    assert dom.count("<svg") >= 2 and "<polyline" in dom and "<table" in dom
    assert CHINESE_NAME in dom
    assert '&lt;script&gt;alert("pwned")&lt;/script&gt;' in dom
    assert "<script" not in dom.lower() and "parsererror" not in dom
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console


#: Measures the laid-out page: the probe is the test's, the report itself has no script.
_PROBE = (
    "<script>document.body.setAttribute('data-fit', "
    "document.documentElement.scrollWidth + '/' + window.innerWidth)</script>"
)


@needs_chromium
@pytest.mark.parametrize("by", [None, "segment"])
def test_long_words_wrap_instead_of_widening_the_page(
    world: World, tmp_path: Path, by: Literal["segment"] | None
) -> None:
    html = render_report(world.env.store, world.env.config, fmt="html", by=by)
    assert LONG_NAME in html and (by or LONG_SUMMARY in html)
    page = tmp_path / "report.html"
    page.write_text(html.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    # 600 pixels: the width e-mail clients lay messages out in.
    dom = _chromium(page, tmp_path, "--window-size=600,900").stdout
    found = re.search(r'data-fit="(\d+)/(\d+)"', dom)
    assert found is not None, dom[-500:]
    scroll, viewport = map(int, found.groups())
    assert 0 < scroll <= viewport, f"the page is {scroll}px wide in a {viewport}px window"
