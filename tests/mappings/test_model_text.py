"""The model's values and the English they are rendered in."""

from __future__ import annotations

import dataclasses

import pytest

from mappings.model import LinkTarget, WorkItem, fast_constructor, new_work_item
from mappings.text import number, percent, plural, truncate
from tests.mappings.factories import FIELDS, issue


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
