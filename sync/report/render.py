"""Rendering a :class:`~sync.report.build.ReportDocument` with Jinja2 templates.

Customer names, issue summaries and every other remote text are untrusted: HTML templates
are autoescaped, Markdown goes through :func:`markdown_text` (a ``|`` or ``*`` in a summary
must not break a table, nor a ``<script>`` reach a renderer), and plain text loses its
control characters. Charts are inline SVG from :mod:`sync.report.svg`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from datetime import date, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from mappings.model import Customer, ProgressReport, SatisfactionFlag
from mappings.report import (
    CustomerReport,
    PairReport,
    listed_burnup,
    satisfaction_badge,
    synced_from,
)
from mappings.text import LEVEL_WORDS, number, percent
from sync.report import Format
from sync.report.build import ReportDocument
from sync.report.svg import burnup_svg, trend_svg

__all__ = ["display_width", "markdown_text", "pad", "plain_text", "render", "render_parts"]

TEMPLATES = {
    "html": "report.html.j2",
    "markdown": "report.md.j2",
    "text": "report.txt.j2",
}
#: Rows of the overdue and blocked lists shown per project; the rest are counted.
LIST_LIMIT = 15

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def plain_text(value: object) -> str:
    """Remote text on one line, without control characters (line breaks become spaces)."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(" ", text.replace("\r\n", " ").replace("\n", " ").replace("\t", " "))


def markdown_text(value: object) -> str:
    """Remote text made inert in Markdown: every markup character escaped, ``<``/``>``/``&``
    as entities, on one line (so it is safe inside a table cell)."""
    text = plain_text(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def pad(value: object, width: int, align: str = "left") -> str:
    """``value`` as plain text padded (or cut with an ellipsis) to ``width`` columns."""
    text = plain_text(value)
    if display_width(text) > width:
        cut = ""
        for ch in text:
            if display_width(cut + ch) > width - 1:
                break
            cut += ch
        text = cut + "…"
    fill = " " * (width - display_width(text))
    return fill + text if align == "right" else text + fill


def _day(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _burnup(pair: PairReport) -> Markup:
    report = pair.progress
    label = f"Burn-up of {report.project_key} for {report.customer_name}"
    return Markup(burnup_svg(pair.burnup, report.forecast.date, label=label))


def _trend(report: CustomerReport, scale: int, risk: float, watch: float) -> Markup:
    label = f"Satisfaction of {report.customer.name}"
    chart = trend_svg(
        report.scores, scale, thresholds=((risk, "risk"), (watch, "watch")), label=label
    )
    return Markup(chart)  # built by ElementTree: every text escaped


def _flag_words(customer: Customer, flag: SatisfactionFlag | None) -> str:
    """A flag in a plain-text column: "no data" for an unscored customer flagged "ok"."""
    badge = satisfaction_badge(customer, flag)
    if badge is None or flag is None:
        return "-"
    return "no data" if badge[0] == "none" else LEVEL_WORDS[flag.level]


def _counted(report: ProgressReport, totals: dict[str, int]) -> str:
    """The items a pair counts: "16", or "16 of 40" when the project has more."""
    whole = totals.get(report.project_key, 0)
    return f"{report.total} of {whole}" if whole > report.total else str(report.total)


@cache
def environment() -> Environment:
    """The Jinja2 environment: autoescape for ``*.html.j2``, strict about undefined names."""
    env = Environment(
        loader=PackageLoader("sync.report", "templates"),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        md=markdown_text,
        plain=plain_text,
        pad=pad,
        day=_day,
        pct=percent,
        num=number,
        listed=listed_burnup,
    )
    env.globals.update(
        burnup=_burnup,
        trend=_trend,
        level_words=LEVEL_WORDS,
        badge=satisfaction_badge,
        flag_words=_flag_words,
        list_limit=LIST_LIMIT,
        synced_from=synced_from,
    )
    return env


def render(document: ReportDocument, fmt: Format) -> str:
    """The document in ``fmt`` (html, markdown or text)."""
    return "".join(render_parts(document, fmt))


def render_parts(document: ReportDocument, fmt: Format) -> Iterator[str]:
    """The document in ``fmt``, piece by piece as the template makes it (a report of
    thousands of customers is written out without being held whole)."""
    if fmt not in TEMPLATES:
        raise ValueError(f"unknown report format {fmt!r}; use html, markdown or text")
    template = environment().get_template(TEMPLATES[fmt])
    context: dict[str, Any] = {
        "doc": document,
        "sat": document.rules.satisfaction,
        "counted": lambda report: _counted(report, document.project_totals),
    }
    return template.generate(**context)
