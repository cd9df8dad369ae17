"""What discovery proposes: candidates, one choice per config key, and the whole result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from connectors.discovery import Candidate, Choice, number, printable, span

__all__ = ["Candidate", "Choice", "Discovery", "Project", "number", "printable", "span"]


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
    calls: tuple[int, int] = (0, 0)  # (Jira, the CRM)
    signed_in: str = ""
    #: How the CRM names itself and a customer record, in messages (its discovery's terms).
    crm_name: str = "CRM"
    customer: str = "customer"

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
        """A customer field that holds scores, else a survey object, else the default."""
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
            return f"no {self.customer} field holds scores; a survey object does"
        if self.satisfaction.chosen is None or not self.satisfaction.chosen.hits:
            return (
                f"the default; neither {_a(self.customer)} {self.customer} field nor a survey "
                "object holds scores"
            )
        if self.survey.chosen is not None:
            return (
                f"{_a(self.customer)} {self.customer} field holds the scores (the survey "
                'object below would serve with source = "survey")'
            )
        return f"{_a(self.customer)} {self.customer} field holds the scores"

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
        lines.append(f"(discovery made {jira_calls} Jira and {crm_calls} {self.crm_name} calls)")
        return lines


def _a(noun: str) -> str:
    """The article before ``noun``: ``a`` or ``an``, by its first letter."""
    return "an" if noun[:1].lower() in "aeiou" else "a"
