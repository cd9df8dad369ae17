"""Flag comments over the HTTPS sandbox, in-process, on SQLite and PostgreSQL (issue 13):

- a new or lost state store posts no flag comment again: one search for our marker text
  finds the issues that carry one, and only those get their comments read; reconcile
  names a duplicate by comment id and ``--apply`` deletes the one we posted (a person's
  copy is reported, never deleted);
- a project linked to 15 accounts by a project-level rule gets one comment per item per
  change, naming the customers, on the epics and the items with no epic; none on the first
  sync or on an issue newly linked to an already at-risk customer (the label goes on);
- an account named with wiki markup reaches the comment, read back through the API, as
  plain text: no link, macro, mention or automatic URL link survives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connectors.jira.lanes import WIDTH
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.schema import JIRA_FLAG_FIELD_ID, JIRA_FLAG_FIELD_NAME
from connectors.sandbox.server import Tls
from connectors.sandbox.stack import Sandbox
from mappings.text import MARKER_PHRASE, MARKER_PREFIX, parse_marker
from sync.reconcile import ReconcileReport, reconcile
from sync.remote import build_remotes
from tests.connectors.test_jira_lanes import slow_comment_reads
from tests.sync.e2e import (
    FIRST_SIGHT,
    JIRA_COMMENTS,
    LABEL,
    SyncEnv,
    calls,
    duplicate_comments,
    in_process_env,
    reset_calls,
)

HOSTILE = "[click|https://evil.example] {color:red}@admin{color}"


def _comment_count(box: Sandbox) -> int:
    return sum(len(comments) for comments in box.jira.comments.values())


def _flag_comments(box: Sandbox) -> dict[str, list[str]]:
    """Issue key -> bodies of its comments that carry our marker."""
    out: dict[str, list[str]] = {}
    for key, comments in box.jira.comments.items():
        bodies = [str(c.body) for c in comments if MARKER_PREFIX in str(c.body)]
        if bodies:
            out[key] = bodies
    return out


@contextmanager
def _jql_log(box: Sandbox) -> Iterator[list[str]]:
    """Every JQL the Jira sandbox receives inside the block."""
    seen: list[str] = []
    handle = box.jira_app.handle

    def recording(request: SandboxRequest) -> SandboxResponse:
        seen.extend(request.query.get("jql", []))
        return handle(request)

    box.jira_app.handle = recording  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        box.jira_app.handle = handle  # type: ignore[method-assign]


def _reconcile(env: SyncEnv, *, apply: bool = False) -> ReconcileReport:
    reset_calls(env.box)
    report = reconcile(
        env.config, env.store, build_remotes(env.config), apply=apply, now=env.clock()
    )
    assert report.status in ("ok", "parked"), report.message
    return report


def test_a_new_state_store_posts_no_flag_comment_again_and_duplicates_are_removed(
    store_url: str, tmp_path: Path, tls: Tls
) -> None:
    with in_process_env(store_url, tmp_path, tls) as env:
        env.edit_config(*FIRST_SIGHT)
        assert env.cycle().exit_code == 0
        box = env.box
        posted = _flag_comments(box)
        assert posted, "the first sync posted no flag comment: the test would prove nothing"
        before = _comment_count(box)
        env.clock.advance(minutes=10)

        # The state store is lost: a new SQLite file, same sites, same config.
        moved = SyncEnv(box, _fresh(tmp_path / "second"), f"sqlite:///{tmp_path}/new.db", None)
        try:
            moved.edit_config(*FIRST_SIGHT)
            with _jql_log(box) as jql:
                result = moved.cycle()
            assert result.exit_code == 0, result.message
            assert _comment_count(box) == before  # not one comment posted again
            assert duplicate_comments(box) == {}
            # One search for the marker text (a phrase search), scoped to the projects.
            (search,) = [q for q in jql if "comment ~" in q]
            assert f'comment ~ "\\"{MARKER_PHRASE}\\""' in search and "project in" in search
            # Comments were read only on issues the search named (those about to get one).
            assert 0 < calls(box).count(f"jira {JIRA_COMMENTS}") <= len(posted)
            moved.settle()  # what the new store recorded matches the site: nothing to write

            clean = _reconcile(moved)
            assert [d for d in clean.duplicates if d.kind == "flag_comment"] == []

            # A flag comment posted again by the integration user, and a person's copy.
            ours_key, theirs_key = sorted(posted)[:2]
            again = box.jira.add_comment(ours_key, posted[ours_key][-1])
            person = box.jira.world.jira_users[0].account_id
            copy = box.jira.add_comment(theirs_key, posted[theirs_key][-1], person)
            moved.clock.advance(minutes=1)

            flight = slow_comment_reads(box)
            found = _reconcile(moved)
            # the marked issues' comments read a few at once, never more than the lanes
            assert found.read["jira_comment_checks"] == len(posted) > 1
            assert 1 < flight["most"] <= WIDTH and flight["ended"] == len(posted)
            named = {d.key: d.ids for d in found.duplicates if d.kind == "flag_comment"}
            assert named == {ours_key: (str(again.id),), theirs_key: (str(copy.id),)}
            assert found.written == {} and calls(box).writes == 0  # reading writes nothing

            # Without Delete Own Comments the comment stays, and the apply says so (exit 1).
            box.jira.denied_permissions = {"DELETE_OWN_COMMENTS", "DELETE_ALL_COMMENTS"}
            refused = _reconcile(moved, apply=True)
            assert refused.exit_code == 1 and "lacks Delete Own Comments" in refused.message
            assert "jira_comments_deleted" not in refused.written
            assert again.id in {c.id for c in box.jira.comments[ours_key]}
            box.jira.denied_permissions = set()

            applied = _reconcile(moved, apply=True)
            assert applied.written.get("jira_comments_deleted") == 1
            assert [c.id for c in box.jira.comments[ours_key]][-1] != again.id
            assert copy.id in {c.id for c in box.jira.comments[theirs_key]}  # a person's
            left = _reconcile(moved)
            assert {d.key for d in left.duplicates if d.kind == "flag_comment"} == {theirs_key}
        finally:
            moved.close()


def _fresh(directory: Path) -> Path:
    directory.mkdir(parents=True)
    return directory


def test_a_project_of_many_customers_gets_one_plain_text_comment_per_item_per_change(
    store_url: str, tmp_path: Path, tls: Tls
) -> None:
    with in_process_env(store_url, tmp_path, tls) as env:
        box, sf = env.box, env.box.salesforce
        project = max(box.jira.by_project, key=lambda p: len(box.jira.by_project[p]))
        # One account linked only elsewhere (by the issues' own field) is at risk from the
        # start; 15 others are linked to the whole project by the static table.
        other = max(
            str(i.account_id)
            for p, issues in box.jira.by_project.items()
            if p != project
            for i in issues
            if i.account_id and i.status != "Done"
        )
        customers = [str(a["Id"]) for a in sf.records("Account") if a["Id"] != other]
        customers = sorted(customers)[:15]
        env.edit_config(
            'order = ["jira_field", "crm_field", "static"]',
            'order = ["static", "jira_field", "crm_field"]',
        )
        env.edit_config("[link.static]", f"[link.static]\n{project} = {json.dumps(customers)}")
        env.edit_config('field = ""', f'field = "{JIRA_FLAG_FIELD_NAME}"')
        # All fine at first; one of them is named with wiki markup.
        for case in sf.records("Case"):
            if case["AccountId"] in customers:
                sf.update_record("Case", case["Id"], IsClosed=True)
        for account in customers:
            sf.update_record("Account", account, CSAT__c=4.8)
        sf.update_record("Account", customers[0], Name=HOSTILE)
        sf.update_record("Account", other, CSAT__c=2.0)  # its items see it a first time

        assert env.cycle().exit_code == 0
        assert any(LABEL in issue.labels for issue in box.jira.issues.values())
        assert _comment_count(box) == 0  # a first sync announces nothing: the label says it
        env.settle()

        for account in customers:
            sf.update_record("Account", account, CSAT__c=2.0)
        env.clock.advance(minutes=1)
        before = {key: len(comments) for key, comments in box.jira.comments.items()}
        assert env.cycle().exit_code == 0

        new = {
            key: [str(c.body) for c in comments[before.get(key, 0) :]]
            for key, comments in box.jira.comments.items()
            if len(comments) > before.get(key, 0)
        }
        assert all(len(bodies) == 1 for bodies in new.values()), new  # one per item
        issues = box.jira.by_project[project]
        open_keys = {i.key for i in issues if i.status != "Done"}

        # On the open items with no open item above them (a sub-task's story, then its
        # epic): the epics, the items without one.
        def ancestors(key: str) -> set[str]:
            found: set[str] = set()
            parent = box.jira.issues[key].parent_key
            while parent in box.jira.issues and parent not in found:
                found.add(parent)
                parent = box.jira.issues[parent].parent_key
            return found

        heads = {i.key for i in issues if i.key in open_keys and not ancestors(i.key) & open_keys}
        assert heads and heads < open_keys
        assert {key for key in new if key in open_keys} == heads
        for key in heads:
            (body,) = new[key]
            assert sorted(c for c, level in parse_marker(body) if level == "at_risk") == customers
            assert body.startswith("Customer satisfaction changed for 15 customers of this work:")
        # Every item carries the label and the level in the field: values of ours.
        assert all(LABEL in box.jira.issue(key).labels for key in open_keys)
        assert {box.jira.custom_values[key][JIRA_FLAG_FIELD_ID] for key in open_keys} == {"at_risk"}

        # The comment as Jira serves it (API v2: wiki markup): the name is plain text.
        jira = build_remotes(env.config).jira
        epic = min(heads)
        (served,) = [c.body for c in jira.comment_infos(epic) if MARKER_PREFIX in c.body]
        assert _unescaped_markup(served) == []
        assert HOSTILE in _rendered_text(served)
        assert "https://" not in served  # no automatic link either

        # A new issue linked to these (already at-risk) customers: the label, no comment.
        created = box.jira.create_issue(project, "New work").key
        env.clock.advance(minutes=1)
        assert env.cycle().exit_code == 0
        assert LABEL in box.jira.issue(created).labels
        assert created not in box.jira.comments or box.jira.comments[created] == []
        env.settle()


#: Wiki markup that makes a link, macro, mention, image or table cell, when not escaped.
_MARKUP = re.compile(r"(?<!\\)[\[\]{}|!]|(?<!\\)@")


def _unescaped_markup(body: str) -> list[str]:
    return _MARKUP.findall(body)


def _rendered_text(body: str) -> str:
    """What Jira's renderer shows of escaped text: ``\\X`` as ``X``, zero-width spaces
    invisible."""
    return re.sub(r"\\(.)", r"\1", body).replace("\u200b", "")
