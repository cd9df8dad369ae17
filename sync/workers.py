"""The old import path of the shard names, kept only while sync/engine.py and sync/push.py
(moving into sync/cycle/ on another branch) still import from here: the names live in
:mod:`sync.cycle.ownership`. Delete this module once those imports point there."""

from __future__ import annotations

from sync.cycle.ownership import JIRA_PREFIX, Assignment, everything, shard_of_record

__all__ = ["JIRA_PREFIX", "Assignment", "everything", "shard_of_record"]
