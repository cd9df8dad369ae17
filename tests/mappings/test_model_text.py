"""The model's values and the English they are rendered in."""

from __future__ import annotations

import dataclasses

import pytest

from mappings.model import (
    Customer,
    LinkTarget,
    WorkItem,
    fast_constructor,
    new_flag,
    new_work_item,
)
from mappings.text import (
    flag_comment,
    flag_marker,
    number,
    parse_marker,
    percent,
    plural,
    truncate,
    wiki_escape,
)
from tests.mappings.factories import AS_OF, FIELDS, issue


def test_fast_constructor_makes_ordinary_frozen_instances() -> None:
    from mappings.normalise_jira import normalise_issue

    item = normalise_issue(issue("APOLLO-7", labels=["x"]), FIELDS)
    args = [getattr(item, f.name) for f in dataclasses.fields(WorkItem)]
    slow = WorkItem(*args)
    fast = new_work_item(*args)
    assert type(fast) is WorkItem and fast == slow and hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.key = "APOLLO-8"  # type: ignore[misc]
    assert dataclasses.replace(fast, key="APOLLO-8").key == "APOLLO-8"
    build = fast_constructor(LinkTarget)
    assert build("c", "P", "static", None) == LinkTarget("c", "P", "static")


def test_numbers_and_words() -> None:
    assert [number(x) for x in (2.8, 4.0, 3.45, 10, 3.456)] == [
        "2.8",
        "4.0",
        "3.45",
        "10.0",
        "3.46",
    ]
    assert [percent(x) for x in (75.0, 62.5, 33.333, 0)] == ["75", "62.5", "33.3", "0"]
    assert plural(1, "item") == "1 item" and plural(2, "item") == "2 items"
    assert plural(3, "escalated case") == "3 escalated cases"
    assert truncate("abcdef", 4) == "abc…" and truncate("abc", 4) == "abc"


def test_crm_text_is_escaped_into_plain_wiki_text() -> None:
    # The account name of issue 13: a link and a coloured mention, planted in our comment.
    hostile = "[click|https://evil.example] {color:red}@admin{color}"
    assert wiki_escape(hostile) == (
        "\\[click\\|https:\u200b//evil.example\\] \\{color:red\\}\\@admin\\{color\\}"
    )
    assert wiki_escape("[~admin] !x.png! {{code}} -del- +ins+ ^sup^ ~sub~ ??cite?? *b* _i_") == (
        "\\[\\~admin\\] \\!x.png\\! \\{\\{code\\}\\} \\-del\\- \\+ins\\+ \\^sup\\^ \\~sub\\~ "
        "\\?\\?cite\\?\\? \\*b\\* \\_i\\_"
    )
    # No new line can start a heading, list or table; a backslash cannot undo an escape or
    # break a line; automatic links lose their scheme's match.
    assert wiki_escape("x\nh1. Title\r\n# one\t||a||") == "x h1. Title  \\# one \\|\\|a\\|\\|"
    assert wiki_escape("a\\[b \\\\ c") == "a\u29f5\\[b \u29f5\u29f5 c"
    assert wiki_escape("mailto:x FILE:y") == "mailto:\u200bx FILE:\u200by"
    plain = "Acme Corp 华信（北京） 3.5/5, 'ok'."
    assert wiki_escape(plain) == plain


def test_a_flag_comment_escapes_crm_text_and_keeps_its_markers_findable() -> None:
    hostile = Customer(
        id="001A",
        name="{color:red}Evil]",
        segment=None,
        owner_id=None,
        owner_name=None,
        satisfaction=None,
        open_cases=0,
        escalated_cases=0,
        url="",
    )
    risk = new_flag("001A", "at_risk", ("CSAT 2.8/5 below 3.5",), AS_OF)
    fine = new_flag("001B", "ok", (), AS_OF)
    one = flag_comment([(hostile, risk, AS_OF.date())])
    assert one == (
        "Customer \\{color:red\\}Evil\\] is at risk: CSAT 2.8/5 below 3.5. (since 2026-11-21) "
        "\\[jira-crm-sync:flag:001A:at_risk\\]"
    )
    both = flag_comment([(hostile, risk, AS_OF.date()), (None, fine, None)])
    assert both.splitlines() == [
        "Customer satisfaction changed for 2 customers of this work:",
        "* \\{color:red\\}Evil\\] is at risk: CSAT 2.8/5 below 3.5 (since 2026-11-21).",
        "* 001B is no longer flagged: satisfaction is OK.",
        "\\[jira-crm-sync:flag:001A:at_risk\\] \\[jira-crm-sync:flag:001B:ok\\]",
    ]
    assert parse_marker(both) == [("001A", "at_risk"), ("001B", "ok")]
    # Older plain markers, and markers as Jira may re-escape them, read the same.
    assert parse_marker(flag_marker("001A", "watch")) == [("001A", "watch")]
    assert parse_marker("\\[jira-crm-sync:flag:001\\_A:at\\_risk\\]") == [("001_A", "at_risk")]
