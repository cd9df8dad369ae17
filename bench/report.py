"""The short table on stderr: one row per size and scenario."""

from __future__ import annotations

from typing import Any

COLUMNS = (
    ("issues", 7),
    ("scenario", 24),
    ("calls", 6),
    ("min", 6),
    ("ratio", 6),
    ("reads", 6),
    ("writes", 6),
    ("wall s", 7),
    ("cpu s", 7),
    ("rss MB", 7),
    ("merge/s", 8),
    ("mails", 6),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)


def rows(document: dict[str, Any]) -> list[list[str]]:
    """The table's cells (also what the README shows)."""
    out: list[list[str]] = []
    for size in document["sizes"]:
        for s in size["scenarios"]:
            if "missing" in s or "skipped" in s:
                word = "missing" if "missing" in s else "skipped"
                out.append([str(size["issues"]), s["scenario"], word, *[""] * 9])
                continue
            rss = s.get("peak_rss_mb")
            out.append(
                [
                    _cell(size["issues"]),
                    s["scenario"] + (" !" if s["targets_missed"] else ""),
                    _cell(s["total_actual"]),
                    _cell(s["total_minimum"]),
                    _cell(s["ratio"]),
                    _cell(s["reads"]),
                    _cell(s["writes"]),
                    _cell(s.get("wall_seconds")),
                    _cell(s.get("cpu_seconds")),
                    _cell(rss),
                    _cell(s.get("merge_issues_per_second")),
                    _cell(s.get("jira_emails_avoided")),
                ]
            )
    return out


def table(document: dict[str, Any]) -> str:
    """Fixed-width text; ``!`` marks a scenario that misses a target (listed below)."""
    head = " ".join(name.rjust(width) for name, width in COLUMNS)
    lines = [head, "-" * len(head)]
    for cells in rows(document):
        lines.append(" ".join(c.rjust(w) for c, (_n, w) in zip(cells, COLUMNS, strict=True)))
    if document.get("latency_ms"):
        lines.append(f"latency {document['latency_ms']} ms per call:")
        for size in document["sizes"]:
            for s in size["scenarios"]:
                if s.get("latency_bound_seconds"):
                    lines.append(
                        f"  {size['issues']} {s['scenario']}: wall {s['wall_seconds']} s, "
                        f"bound {s['latency_bound_seconds']} s, "
                        f"ratio {s['wall_over_latency_bound']}"
                    )
    missed = document.get("targets_missed") or []
    lines.append("targets missed: " + ("none" if not missed else ""))
    lines += [f"  - {m}" for m in missed]
    return "\n".join(lines)
