"""Inline SVG charts of the HTML report: a burn-up with its forecast, and a score trend.

Small on purpose: two chart shapes need no charting library, and building the document with
:mod:`xml.etree.ElementTree` guarantees well-formed XML with every text escaped. Charts are
static (no script, no font or image fetched) so they print and show in e-mail clients.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import date

from mappings.report import BurnPoint, ScorePoint, synced_from
from mappings.text import number

__all__ = ["burnup_svg", "trend_svg"]

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH, HEIGHT = 560, 220
TREND_HEIGHT = 140
#: Plot margins: left (y labels), right, top, bottom (x labels).
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 14, 30
COLOURS = {
    "scope": "#607d8b",
    "done": "#2e7d32",
    "forecast": "#1565c0",
    "score": "#6a1b9a",
    "grid": "#e0e0e0",
    "axis": "#9e9e9e",
    "text": "#424242",
    "risk": "#c62828",
    "watch": "#ef6c00",
}


def scale(value: float, lo: float, hi: float, out_lo: float, out_hi: float) -> float:
    """``value`` mapped linearly from [lo, hi] to [out_lo, out_hi] (the middle if lo == hi)."""
    if hi == lo:
        return round((out_lo + out_hi) / 2, 1)
    return round(out_lo + (value - lo) * (out_hi - out_lo) / (hi - lo), 1)


class _Chart:
    """An SVG canvas with a plot area in data coordinates (days on x)."""

    def __init__(self, label: str, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.root = ET.Element(
            "svg",
            {
                "xmlns": SVG_NS,
                "width": str(width),
                "height": str(height),
                "viewBox": f"0 0 {width} {height}",
                "role": "img",
                "aria-label": label,
                "class": "chart",
            },
        )
        ET.SubElement(self.root, "title").text = label
        self.x0, self.x1 = LEFT, width - RIGHT
        self.y0, self.y1 = height - BOTTOM, TOP  # y grows downwards
        self.days = (0, 1)
        self.values = (0.0, 1.0)

    def set_domain(self, first: date, last: date, lo: float, hi: float) -> None:
        self.days = (first.toordinal(), max(last.toordinal(), first.toordinal()))
        self.values = (lo, hi)

    def x(self, day: date) -> float:
        return scale(day.toordinal(), *self.days, self.x0, self.x1)

    def y(self, value: float) -> float:
        return scale(value, *self.values, self.y0, self.y1)

    def add(self, tag: str, **attrs: object) -> ET.Element:
        return ET.SubElement(
            self.root, tag, {k.rstrip("_").replace("_", "-"): str(v) for k, v in attrs.items()}
        )

    def text(
        self, x: float, y: float, content: str, anchor: str = "start", **attrs: object
    ) -> None:
        node = self.add(
            "text",
            x=x,
            y=y,
            fill=COLOURS["text"],
            font_size=11,
            font_family="Helvetica, Arial, sans-serif",
            text_anchor=anchor,
            **attrs,
        )
        node.text = content

    def frame(self, first: date, last: date, hi_label: str, lo_label: str = "0") -> None:
        """Axes, a light grid line at the top, and the end labels."""
        self.add("line", x1=self.x0, y1=self.y0, x2=self.x1, y2=self.y0, stroke=COLOURS["axis"])
        self.add("line", x1=self.x0, y1=self.y0, x2=self.x0, y2=self.y1, stroke=COLOURS["axis"])
        self.add("line", x1=self.x0, y1=self.y1, x2=self.x1, y2=self.y1, stroke=COLOURS["grid"])
        self.text(self.x0 - 6, self.y1 + 4, hi_label, "end")
        self.text(self.x0 - 6, self.y0 + 4, lo_label, "end")
        self.text(self.x0, self.y0 + 18, first.isoformat())
        if last != first:
            self.text(self.x1, self.y0 + 18, last.isoformat(), "end")

    def polyline(self, points: Sequence[tuple[float, float]], colour: str, **attrs: object) -> None:
        if len(points) >= 2:
            self.add(
                "polyline",
                points=" ".join(f"{x},{y}" for x, y in points),
                fill="none",
                stroke=colour,
                stroke_width=2,
                **attrs,
            )
        for x, y in points if len(points) <= 40 else points[-1:]:
            self.add("circle", cx=x, cy=y, r=2.5, fill=colour)

    def empty(self, message: str) -> str:
        self.add(
            "rect",
            x=self.x0,
            y=self.y1,
            width=self.x1 - self.x0,
            height=self.y0 - self.y1,
            fill="#fafafa",
            stroke=COLOURS["grid"],
        )
        self.text((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2, message, "middle")
        return self.render()

    def legend(self, entries: Sequence[tuple[str, str, bool]]) -> None:
        """Colour keys along the top right: (label, colour, dashed)."""
        x = self.x1
        for label, colour, dashed in reversed(entries):
            width = 7 * len(label) + 26
            x -= width
            extra: dict[str, object] = {"stroke_dasharray": "5,3"} if dashed else {}
            self.add("line", x1=x, y1=8, x2=x + 16, y2=8, stroke=colour, stroke_width=2, **extra)
            self.text(x + 20, 12, label)

    def render(self) -> str:
        return ET.tostring(self.root, encoding="unicode", short_empty_elements=True)


def burnup_svg(
    points: Sequence[BurnPoint],
    forecast: date | None = None,
    *,
    label: str = "Burn-up",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """A burn-up: total scope and work done per day, and a dashed line from the newest day
    to the forecast completion date (when there is one). Where the points rebuilt from
    creation and done dates end and the synced snapshots begin, a dotted line says so."""
    chart = _Chart(label, width, height)
    if not points:
        return chart.empty("No progress snapshots yet: they build up with each day's sync")
    ordered = sorted(points, key=lambda p: p.day)
    last = ordered[-1]
    end = max(last.day, forecast) if forecast is not None else last.day
    top = max(max(p.total for p in ordered), 1)
    chart.set_domain(ordered[0].day, end, 0, top)
    chart.frame(ordered[0].day, end, str(top))
    synced = synced_from(ordered)
    if synced is not None:
        x = chart.x(synced)
        chart.add(
            "line",
            x1=x,
            y1=chart.y0,
            x2=x,
            y2=chart.y1,
            stroke=COLOURS["axis"],
            stroke_dasharray="2,3",
            class_="synced-from",
        )
        # Left of the line when it is near the right edge (a first sync is the last day).
        anchor = "end" if x > (chart.x0 + chart.x1) / 2 else "start"
        chart.text(x + (-4 if anchor == "end" else 4), chart.y1 + 12, "synced from here", anchor)
    chart.polyline([(chart.x(p.day), chart.y(p.total)) for p in ordered], COLOURS["scope"])
    chart.polyline([(chart.x(p.day), chart.y(p.done)) for p in ordered], COLOURS["done"])
    entries = [("scope", COLOURS["scope"], False), ("done", COLOURS["done"], False)]
    if forecast is not None and forecast > last.day and last.done < last.total:
        chart.add(
            "line",
            x1=chart.x(last.day),
            y1=chart.y(last.done),
            x2=chart.x(forecast),
            y2=chart.y(last.total),
            stroke=COLOURS["forecast"],
            stroke_width=2,
            stroke_dasharray="5,3",
        )
        entries.append(("forecast", COLOURS["forecast"], True))
    chart.legend(entries)
    return chart.render()


def trend_svg(
    points: Sequence[ScorePoint],
    scale_max: float | None = None,
    *,
    thresholds: Sequence[tuple[float, str]] = (),
    label: str = "Satisfaction trend",
    width: int = WIDTH,
    height: int = TREND_HEIGHT,
) -> str:
    """Scores over time on 0..``scale_max`` (or the scores' own range), with horizontal
    threshold lines: (value, "risk" | "watch")."""
    chart = _Chart(label, width, height)
    if not points:
        return chart.empty("No satisfaction data")
    ordered = sorted(points, key=lambda p: p.day)
    hi = scale_max if scale_max else max(p.score for p in ordered)
    chart.set_domain(ordered[0].day, ordered[-1].day, 0, max(hi, 1e-9))
    chart.frame(ordered[0].day, ordered[-1].day, number(hi))
    for value, kind in thresholds:
        if 0 < value < hi:
            y = chart.y(value)
            chart.add(
                "line",
                x1=chart.x0,
                y1=y,
                x2=chart.x1,
                y2=y,
                stroke=COLOURS.get(kind, COLOURS["grid"]),
                stroke_dasharray="2,3",
            )
            chart.text(chart.x0 - 6, y + 4, number(value), "end")
    chart.polyline([(chart.x(p.day), chart.y(p.score)) for p in ordered], COLOURS["score"])
    return chart.render()
