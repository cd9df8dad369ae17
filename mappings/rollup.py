"""Customer-group (segment) rollups: customers, satisfaction, flags, projects by health."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable

from mappings.model import Customer, ProgressReport, SatisfactionFlag, SegmentRollup

__all__ = ["UNASSIGNED", "SegmentCounts", "segment_rollups"]

#: The group of customers whose segment field is empty.
UNASSIGNED = "(no segment)"


class _Acc:
    __slots__ = ("amber", "counts", "customers", "escalated", "green", "open", "red", "scores")

    def __init__(self) -> None:
        self.customers = 0
        self.scores: list[float] = []
        self.counts = {"ok": 0, "watch": 0, "at_risk": 0}
        self.green = self.amber = self.red = 0
        self.open = self.escalated = 0


class SegmentCounts:
    """Customers, scores, flags and cases per segment: what the rollups count from the CRM
    side. Counted once, they serve any set of reports (a merge in batches of projects adds
    each batch's reports to the same counts without counting every customer again)."""

    __slots__ = ("_groups", "_segment_of")

    def __init__(self, segment_of: dict[str, str], groups: dict[str, _Acc]) -> None:
        self._segment_of = segment_of
        self._groups = groups

    @classmethod
    def of(cls, customers: Iterable[Customer], flags: Iterable[SatisfactionFlag]) -> SegmentCounts:
        """Count ``customers`` and their ``flags`` by segment."""
        segment_of: dict[str, str] = {}
        groups: dict[str, _Acc] = defaultdict(_Acc)
        for customer in customers:
            segment = customer.segment or UNASSIGNED
            segment_of[customer.id] = segment
            acc = groups[segment]
            acc.customers += 1
            acc.open += customer.open_cases
            acc.escalated += customer.escalated_cases
            if customer.satisfaction is not None:
                acc.scores.append(customer.satisfaction.score)
        for flag in flags:
            flag_segment = segment_of.get(flag.customer_id)
            if flag_segment is not None:
                groups[flag_segment].counts[flag.level] += 1
        return cls(segment_of, dict(groups))

    def rollups(self, reports: Iterable[ProgressReport]) -> tuple[SegmentRollup, ...]:
        """One rollup per segment with ``reports`` counted by health (these counts are
        left as they were)."""
        health: dict[str, list[int]] = {segment: [0, 0, 0] for segment in self._groups}
        for report in reports:
            report_segment = self._segment_of.get(report.customer_id)
            if report_segment is None:
                continue
            tally = health[report_segment]
            tally[0 if report.health == "green" else 1 if report.health == "amber" else 2] += 1
        return tuple(
            SegmentRollup(
                segment=segment,
                customers=acc.customers,
                scored_customers=len(acc.scores),
                average_satisfaction=round(math.fsum(acc.scores) / len(acc.scores), 2)
                if acc.scores
                else None,
                ok=acc.counts["ok"],
                watch=acc.counts["watch"],
                at_risk=acc.counts["at_risk"],
                green=health[segment][0],
                amber=health[segment][1],
                red=health[segment][2],
                open_cases=acc.open,
                escalated_cases=acc.escalated,
            )
            for segment, acc in sorted(
                self._groups.items(), key=lambda kv: (kv[0] == UNASSIGNED, kv[0])
            )
        )


def segment_rollups(
    customers: Iterable[Customer],
    flags: Iterable[SatisfactionFlag],
    reports: Iterable[ProgressReport],
) -> tuple[SegmentRollup, ...]:
    """One rollup per segment, sorted by segment name (customers without one last).

    Average satisfaction is over customers with a score, in the configured scale; projects
    by health count linked (customer, project) pairs.
    """
    return SegmentCounts.of(customers, flags).rollups(reports)
