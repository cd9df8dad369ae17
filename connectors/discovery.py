"""What a CRM's discovery hands the engine (`init --discover`, `check --online` hints), in
plain CRM-neutral values: candidates for a config key with what speaks for each, one
choice per key, and how the CRM names itself, its customers and their ids.

A connector that can judge its own metadata offers a :class:`CrmDiscovery`
(:class:`connectors.crm.Discoverable`); the engine renders and writes what it proposes
without knowing the CRM's words. Salesforce's is :mod:`connectors.salesforce.discover`,
HubSpot's :mod:`connectors.hubspot.discover`; a CRM whose sign-in carries scopes also
lists what its token lacks (:class:`AccessCheck`), for `check --online`.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from connectors.crm import Needs

__all__ = [
    "AccessCheck",
    "Candidate",
    "Choice",
    "CrmChoices",
    "CrmDiscovery",
    "CrmTerms",
    "Lacking",
    "number",
    "printable",
    "span",
]


@dataclass(frozen=True)
class Candidate:
    """One field or object that could fill a config key, with what speaks for it."""

    #: What the config would hold: a Jira field name (its id when the name repeats), or a
    #: CRM's name of a field or object.
    value: str
    #: The other name it goes by: a Jira field's id (or its name when ``value`` is the
    #: id), a CRM's label; "" when there is none to add.
    aside: str
    #: Why: ``text field; 87 of 100 sampled issues hold a customer id``.
    evidence: str
    #: Sampled records holding a fitting value (ranks candidates; 0: none seen).
    hits: int = 0
    #: Other keys of the same section this candidate fills (a survey object's fields).
    also: tuple[tuple[str, str], ...] = ()

    @property
    def named(self) -> str:
        """``"CRM customer" (customfield_10100)``."""
        named = json.dumps(printable(self.value), ensure_ascii=False)
        return f"{named} ({printable(self.aside)})" if self.aside else named

    def shown(self) -> str:
        """``named: evidence``."""
        return f"{self.named}: {printable(self.evidence)}"

    def note(self) -> str:
        """``aside: evidence``, for the comment above the key (the value is below it)."""
        aside = f"{printable(self.aside)}: " if self.aside else ""
        return aside + printable(self.evidence)

    def hinted(self) -> str:
        """``"CRM customer" (customfield_10100: evidence)``, for "did you mean"."""
        value = json.dumps(printable(self.value), ensure_ascii=False)
        return f"{value} ({self.note()})"


def printable(text: str) -> str:
    """``text`` without control characters: a remote's names reach terminals and files."""
    return "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)


@dataclass(frozen=True)
class Choice:
    """What discovery proposes for one config key: the best candidate (None when nothing
    fits), the others behind it, and what was looked for."""

    section: str
    key: str
    chosen: Candidate | None
    others: tuple[Candidate, ...] = ()
    #: When nothing fits: what was looked for and what to do.
    missing: str = ""

    @property
    def setting(self) -> str:
        """``[section] key``."""
        return f"[{self.section}] {self.key}"

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """Every candidate, best first."""
        return ((self.chosen,) if self.chosen else ()) + self.others

    def line(self) -> str:
        """What was chosen and why, or what is missing: one line for init to print."""
        if self.chosen is None:
            return f"{self.setting}: {self.missing}"
        line = f"{self.setting} = {self.chosen.shown()}"
        seen = [c for c in self.others if c.hits][:2]
        if seen:
            line += "; also seen: " + "; ".join(c.shown() for c in seen)
        return line

    def hint(self) -> str:
        """``did you mean ...?`` for `check --online` ("" when nothing fits)."""
        shown = [c for c in self.candidates if c.hits or c is self.chosen][:3]
        if not shown:
            return ""
        return "did you mean " + ", or ".join(c.hinted() for c in shown) + "?"


def number(value: object) -> float | None:
    """A JSON number as a float (None for anything else, booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def span(values: Sequence[float]) -> str:
    """``1 to 13`` (or ``5`` when every value is the same)."""
    low, high = min(values), max(values)
    return _num(low) if low == high else f"{_num(low)} to {_num(high)}"


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


@dataclass(frozen=True)
class CrmTerms:
    """How a CRM names itself and its customers in messages, and how a customer id held in
    a Jira field is recognised (read as the sync reads a link value)."""

    #: The CRM's name: ``Salesforce``.
    name: str
    #: One customer record and several, as the CRM names them: ``Account``, ``Accounts``.
    customer: str
    customers: str
    #: The canonical id of a customer that a field value names; None when it names none
    #: (not an id, or another record's).
    customer_id: Callable[[object], str | None]

    @property
    def id_noun(self) -> str:
        """``Account Id``."""
        return f"{self.customer} Id"


@dataclass(frozen=True)
class CrmChoices:
    """What a CRM's discovery proposes for its side of the config: the customer fields
    (customer group, satisfaction score, the field naming Jira project keys) and the
    survey and report objects."""

    segment: Choice
    satisfaction: Choice
    crm_link: Choice
    survey: Choice
    report: Choice


class CrmDiscovery(Protocol):
    """A CRM's side of discovery, on a signed-in connector: each method spends a handful
    of calls and answers with neutral values (ConnectorError as the CRM raises)."""

    terms: CrmTerms

    def known_customers(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` (canonical customer ids) are customers the CRM holds (one call,
        a bounded number of ids)."""
        ...

    def choices(
        self, project_keys: Sequence[str], push_fields: Mapping[str, str] | None
    ) -> CrmChoices:
        """Every choice of the CRM's side, from its metadata and a sample of customers."""
        ...

    def hints(
        self,
        roles: set[str],
        project_keys: Sequence[str],
        push_fields: Mapping[str, str] | None,
        report_object: str,
    ) -> dict[str, Choice]:
        """The choices for the configured names that failed (``roles``: ``segment``,
        ``satisfaction``, ``crm_link``, ``survey``, ``report``, ``external_id``), spending
        calls only on what the roles need."""
        ...


@dataclass(frozen=True)
class Lacking:
    """One thing the sign-in may not do that a cycle needs, and the fix (one line)."""

    #: ``scope crm.objects.custom.write``.
    name: str
    #: ``needed to upsert the progress reports ...; add scope ... to the private app``.
    detail: str


@runtime_checkable
class AccessCheck(Protocol):
    """A CRM discovery that can list what its token lacks (HubSpot's scopes)."""

    def missing_access(self, needs: Needs, upload: bool = False) -> tuple[int, list[Lacking]]:
        """(calls made, what is lacking) for a cycle with ``needs`` (``upload``: the HTML
        reports are attached too), each proved by one cheap call that writes nothing."""
        ...
