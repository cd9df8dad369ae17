"""What discovery proposes: candidates, one choice per config key, and the whole result."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Candidate:
    """One field or object that could fill a config key, with what speaks for it."""

    #: What the config would hold: a Jira field name (its id when the name repeats), or a
    #: Salesforce API name.
    value: str
    #: The other name it goes by: a Jira field's id (or its name when ``value`` is the
    #: id), a Salesforce label; "" when there is none to add.
    aside: str
    #: Why: ``text field; 87 of 100 sampled issues hold an Account Id``.
    evidence: str
    #: Sampled records holding a fitting value (ranks candidates; 0: none seen).
    hits: int = 0
    #: Other keys of the same section this candidate fills (a survey object's fields).
    also: tuple[tuple[str, str], ...] = ()

    @property
    def named(self) -> str:
        """``"Salesforce Account" (customfield_10100)``."""
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
        """``"Salesforce Account" (customfield_10100: evidence)``, for "did you mean"."""
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


@dataclass(frozen=True)
class Project:
    """One Jira project the user can browse."""

    key: str
    name: str
    team_managed: bool = False


@dataclass(frozen=True)
class Discovery:
    """Everything `init --discover` proposes; holds no secret."""

    projects: tuple[str, ...]
    in_reach: tuple[Project, ...]
    account_link: Choice
    story_points: Choice
    epic_link: Choice
    crm_link: Choice
    segment: Choice
    satisfaction: Choice
    survey: Choice
    report: Choice
    calls: tuple[int, int] = (0, 0)  # (Jira, Salesforce)
    signed_in: str = ""

    @property
    def link_order(self) -> tuple[str, ...]:
        """The [link] rules with something to read (static last, always)."""
        rules = [
            rule
            for rule, choice in (("jira_field", self.account_link), ("crm_field", self.crm_link))
            if choice.chosen is not None
        ]
        return (*rules, "static")

    @property
    def satisfaction_source(self) -> str:
        """An Account field that holds scores, else a survey object, else the default."""
        if self.satisfaction.chosen is not None and self.satisfaction.chosen.hits:
            return "account_field"
        return "survey" if self.survey.chosen is not None else "account_field"

    def settings(self) -> list[tuple[str, str, Any, str]]:
        """(section, key, value, why) for every key discovery fills; values are TOML-ready
        Python values (str or list of str)."""
        out: list[tuple[str, str, Any, str]] = []

        def put(choice: Choice, blank: str | None = None) -> None:
            chosen = choice.chosen
            if chosen is not None:
                out.append((choice.section, choice.key, chosen.value, chosen.note()))
                for key, value in chosen.also:
                    out.append((choice.section, key, value, f"a field of {chosen.value}"))
            elif blank is not None:
                out.append((choice.section, choice.key, blank, choice.missing))

        order = list(self.link_order)
        out.append(("link", "order", order, "the rules that found something to read"))
        put(self.account_link)
        put(self.crm_link)
        put(self.story_points, blank="")
        put(self.segment)
        put(self.satisfaction)
        out.append(("satisfaction", "source", self.satisfaction_source, self._source_why()))
        put(self.survey)
        put(self.report)
        return out

    def _source_why(self) -> str:
        if self.satisfaction_source == "survey":
            return "no Account field holds scores; a survey object does"
        if self.satisfaction.chosen is None or not self.satisfaction.chosen.hits:
            return "the default; neither an Account field nor a survey object holds scores"
        if self.survey.chosen is not None:
            return (
                "an Account field holds the scores (the survey object below would "
                'serve with source = "survey")'
            )
        return "an Account field holds the scores"

    def lines(self) -> list[str]:
        """What was chosen and why, one line per key, for init to print."""
        reach = ", ".join(
            f"{p.key} ({printable(p.name)}{', team-managed' if p.team_managed else ''})"
            for p in self.in_reach
        )
        lines = [self.signed_in] if self.signed_in else []
        lines.append(
            f"[jira] projects = {', '.join(self.projects)}: {len(self.in_reach)} project(s) "
            f"this user can browse: {reach}"
        )
        lines += [
            c.line()
            for c in (
                self.account_link,
                self.crm_link,
                self.story_points,
                self.segment,
                self.satisfaction,
            )
        ]
        lines.append(
            f"[satisfaction] source = {json.dumps(self.satisfaction_source)}: " + self._source_why()
        )
        lines += [self.survey.line(), self.report.line()]
        epic = self.epic_link.chosen
        lines.append(
            f"Epic Link: {epic.shown()}; the sync reads it itself"
            if epic
            else f"Epic Link: {self.epic_link.missing}"
        )
        jira_calls, crm_calls = self.calls
        lines.append(f"(discovery made {jira_calls} Jira and {crm_calls} Salesforce calls)")
        return lines


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
