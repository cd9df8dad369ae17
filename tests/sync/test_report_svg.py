"""The report's SVG charts: well-formed XML, scaled into the plot, empty series, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from mappings.report import BurnPoint, ScorePoint
from sync.report.svg import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, burnup_svg, scale, trend_svg

NS = {"svg": "http://www.w3.org/2000/svg"}
D = date(2026, 3, 2)


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on malformed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def _points(line: ET.Element) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in line.attrib["points"].split())]


def test_scale_maps_linearly_and_centres_a_flat_domain() -> None:
    assert scale(0, 0, 10, 100, 200) == 100
    assert scale(10, 0, 10, 100, 200) == 200
    assert scale(5, 0, 10, 200, 100) == 150  # y axes grow downwards
    assert scale(3, 3, 3, 0, 100) == 50


def test_burnup_scales_scope_and_done_into_the_plot_area() -> None:
    points = [BurnPoint(D, 2, 10), BurnPoint(D + timedelta(days=5), 5, 20)]
    root = _parse(burnup_svg(points, D + timedelta(days=10), label="APOLLO"))
    scope, done = root.findall("svg:polyline", NS)
    assert _points(scope) == [(LEFT, 102.0), (294.0, TOP)]  # 10 of 20 halfway up
    assert _points(done)[0] == (LEFT, 172.4)  # 2 of 20: a tenth of 176 up from 190
    # x: day 0 at the left edge, day 5 halfway to the forecast on day 10, which ends at the
    # right edge and at the total.
    (forecast,) = [
        line for line in root.findall("svg:line", NS) if line.get("stroke-dasharray") == "5,3"
    ][:1]
    assert (float(forecast.attrib["x2"]), float(forecast.attrib["y2"])) == (WIDTH - RIGHT, TOP)
    texts = [t.text for t in root.findall("svg:text", NS)]
    assert (
        "20" in texts and D.isoformat() in texts and (D + timedelta(days=10)).isoformat() in texts
    )
    for line in (scope, done):
        for x, y in _points(line):
            assert LEFT <= x <= WIDTH - RIGHT and TOP <= y <= HEIGHT - BOTTOM


def test_burnup_marks_where_the_rebuilt_history_ends() -> None:
    rebuilt = [
        BurnPoint(D - timedelta(days=14), 1, 8, True),
        BurnPoint(D - timedelta(days=7), 3, 9, True),
    ]
    root = _parse(burnup_svg([*rebuilt, BurnPoint(D, 4, 10)]))
    (marker,) = [
        line for line in root.findall("svg:line", NS) if line.get("class") == "synced-from"
    ]
    assert float(marker.attrib["x1"]) == float(marker.attrib["x2"]) == WIDTH - RIGHT
    assert "synced from here" in [t.text for t in root.findall("svg:text", NS)]
    for points in ([BurnPoint(D, 4, 10)], rebuilt):  # all synced, or all rebuilt: no marker
        root = _parse(burnup_svg(points))
        assert not [line for line in root.findall("svg:line", NS) if line.get("class")]


def test_burnup_without_forecast_or_with_work_done_has_no_forecast_line() -> None:
    points = [BurnPoint(D, 10, 10)]
    for forecast in (None, D + timedelta(days=3)):
        root = _parse(burnup_svg(points, forecast))
        assert not [line for line in root.findall("svg:line", NS) if line.get("stroke-dasharray")]
        assert len(root.findall("svg:circle", NS)) == 2  # one point per series


def test_empty_series_draw_a_labelled_empty_chart() -> None:
    root = _parse(burnup_svg([]))
    assert root.findall("svg:polyline", NS) == []
    assert "No progress snapshots yet" in "".join(t.text or "" for t in root.iter())
    root = _parse(trend_svg([], 5))
    assert "No satisfaction data" in "".join(t.text or "" for t in root.iter())


def test_trend_has_threshold_lines_inside_the_scale() -> None:
    points = [ScorePoint(D, 4.0), ScorePoint(D + timedelta(days=30), 3.0)]
    root = _parse(trend_svg(points, 5, thresholds=((3.5, "risk"), (4.0, "watch"), (9, "risk"))))
    dotted = [line for line in root.findall("svg:line", NS) if line.get("stroke-dasharray")]
    assert len(dotted) == 2  # 9 is off the 0-5 scale
    (series,) = root.findall("svg:polyline", NS)
    (_, y_first), (_, y_last) = _points(series)
    assert y_last > y_first  # a lower score is drawn lower


def test_labels_are_escaped() -> None:
    svg = burnup_svg([BurnPoint(D, 1, 2)], label='<script>alert("x")</script> & 华信')
    assert "<script>" not in svg
    root = _parse(svg)
    assert root.find("svg:title", NS).text == '<script>alert("x")</script> & 华信'  # type: ignore[union-attr]
