"""The garbage collector tuned for a cycle (sync.collector), by the CLI's entry point."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator

import pytest

from sync import collector
from sync.cli import main


@pytest.fixture
def restored() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    try:
        yield before
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_tune_raises_the_young_threshold_keeps_the_others_and_freezes(
    restored: tuple[int, int, int],
) -> None:
    gc.unfreeze()
    collector.tune()
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, *restored[1:])
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()


def test_the_entry_point_tunes_the_collector_before_any_command(
    restored: tuple[int, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    gc.set_threshold(700, *restored[1:])
    monkeypatch.setattr(sys, "argv", ["jira-crm-sync", "--help"])
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 0
    assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD
