"""A cycle's preamble as one object: what every run over the remotes starts from.

:func:`open_context` takes the config, the store, the remotes and the time, and sets each
side's call budget from ``[limits]`` within what is left of the day (before any call is
made). :meth:`CycleContext.prepare` then signs in, reads (or restores) the metadata and
builds the mapping rules from the typed config. A cycle and ``reconcile`` start the same
way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.crm import CrmConnector
from connectors.jira import JiraConnector
from mappings.rules import FieldIds, Rules
from sync import budget
from sync.config import Config
from sync.remote import Remotes, crm_needs, prepare_crm, prepare_jira
from sync.store import Store, repo

log = logging.getLogger(__name__)


def sides(config: Config) -> tuple[str, str]:
    """The sides a budget and a run's call counts are kept for: Jira and the configured
    CRM (named as its connector names itself: ``config.crm.side``)."""
    return ("jira", config.crm.side)


@dataclass
class CycleContext:
    """The config, store, remotes, time and budgets of one run; after :meth:`prepare`
    also the Jira field ids and the rules."""

    config: Config
    store: Store
    remotes: Remotes
    now: datetime
    #: each side's calls allowed this run (sync.budget).
    allowances: dict[str, budget.Allowance] = field(default_factory=dict)
    field_ids: FieldIds | None = None
    rules: Rules | None = None
    #: whether the CRM is signed in and its describes restored (:meth:`prepare_crm`).
    crm_ready: bool = False

    @property
    def jira(self) -> JiraConnector:
        """The Jira connector."""
        return self.remotes.jira

    @property
    def crm(self) -> CrmConnector:
        """The CRM connector."""
        return self.remotes.crm

    def prepare(self, *, refresh: bool, save: bool, crm: bool = True) -> Rules:
        """Sign in to both sides, read (``refresh``) or restore their metadata, resolve the
        configured fields and build the rules; the metadata read is cached when ``save``.

        Without ``crm`` the CRM is left alone (no sign-in, no describe) until
        :meth:`prepare_crm`: a cycle that may not call it (``run --only push``) signs in
        there only when it derives or has a CRM write waiting.
        """
        config, store = self.config, self.store
        self.field_ids = prepare_jira(
            self.jira, store, self.now, config, refresh=refresh, save=save
        )
        self.rules = config.mapping_rules(self.field_ids)
        if not crm:
            log.info("metadata ready: Jira fields and server; %s not yet", self.crm.side)
            return self.rules
        self.prepare_crm(refresh=refresh, save=save)
        log.info("metadata ready: Jira fields and server, %s describes", self.crm.side)
        return self.rules

    def prepare_crm(self, *, refresh: bool, save: bool) -> None:
        """Sign in to the CRM and read (or restore) its describes, once."""
        if not self.crm_ready:
            needs = crm_needs(self.config)
            prepare_crm(self.crm, self.store, self.now, needs, refresh=refresh, save=save)
            self.crm_ready = True

    def crm_writes_waiting(self, shards: list[str] | None) -> bool:
        """Whether a push would call the CRM: writes to it due now, or left in flight by a
        crash (re-checked, then sent), of ``shards`` (None: all)."""
        with self.store.read() as conn:
            if repo.due_count(conn, "crm", self.now, shard=shards):
                return True
            return any(shards is None or e.shard in shards for e in repo.inflight(conn, "crm"))

    def calls(self) -> dict[str, dict[str, Any]]:
        """The calls each side's meter counted so far."""
        return {
            "jira": self.remotes.jira_meter.snapshot(),
            self.crm.side: self.remotes.crm_meter.snapshot(),
        }


def open_context(
    config: Config,
    store: Store,
    remotes: Remotes,
    now: datetime,
    used: dict[str, int] | None = None,
) -> CycleContext:
    """A run's context, its budgets set: the per-cycle limit of ``[limits]``, within what is
    left of the day's (every run's calls today are counted in the store, and what running
    cycles reserved). ``used``: those calls per side as the run's reservation found them
    (sync.store.repo.reserve_calls); None reads them."""
    if used is None:
        day = now.date()
        with store.read() as conn:
            used = {
                side: repo.calls_today(conn, side, day) + repo.reserved_today(conn, side, day)
                for side in sides(config)
            }
    allowances = budget.allowances(config, used)
    remotes.jira_meter.reset(allowances["jira"].calls)
    remotes.crm_meter.reset(allowances[remotes.crm.side].calls)
    return CycleContext(config, store, remotes, now, allowances)
