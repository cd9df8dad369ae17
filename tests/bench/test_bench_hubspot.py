"""The HubSpot scenarios of the benchmark at a tiny size (``python -m bench --crm hubspot``,
in this process with the portal and Jira in-process, for speed: tests/bench/test_bench.py
runs the entry point over HTTPS): every scenario reports its figures, the calls stay
within the floor HubSpot's API allows (search pages of 100, batch writes of 100) plus the
few extra calls named here, and the no-change cycle costs 3 reads.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.__main__ import main
from bench.hubspot import HUBSPOT_SCENARIOS
from bench.model import HubSpotWork, bucket_of
from bench.report import table

#: Calls a scenario may make beyond the floor, per bucket, and why.
EXTRA: dict[str, dict[str, int]] = {
    "hubspot_full_first_sync": {
        # Jira's delete key scan also runs on a first pull (issue 17: "no call twice").
        "jira search": 1,
        # The archived companies and tickets are listed on a first pull too, though the
        # searches returned only live records.
        "hubspot archived lists": 2,
    },
    "hubspot_changed_1pct": {
        # Every written report is associated again (crash safety: a rerun after a kill
        # between the upsert and the association sees the records as existing).
        "hubspot report associations": 1,
    },
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench-hubspot") / "bench.json"
    code = main(
        ["--sizes", "120", "--crm", "hubspot", "--transport", "inprocess", "--json-out", str(out)]
    )
    assert code == 0
    parsed: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return parsed


def _scenarios(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (size,) = document["sizes"]
    assert (size["issues"], size["accounts"]) == (120, 24)
    return {s["scenario"]: s for s in size["scenarios"]}


def test_every_hubspot_scenario_runs_against_the_portal(ran: dict[str, Any]) -> None:
    scenarios = _scenarios(ran)
    assert tuple(scenarios) == HUBSPOT_SCENARIOS
    for name, s in scenarios.items():
        assert s["crm"] == "hubspot" and set(s["by_endpoint"]) == {"jira", "hubspot"}, name
        assert s["wall_seconds"] > 0 and s["cpu_seconds"] > 0, name
        # The sandboxes' counts and the product's own meters agree.
        assert s["product_meter_total"] == s["total_actual"] == s["reads"] + s["writes"], name
    first = scenarios["hubspot_full_first_sync"]
    assert first["work"]["crm_records_to_read"]["companies"] == 24
    assert first["work"]["crm_records_to_create"] >= 1
    assert "hubspot_full_first_sync" in table(ran)


def test_calls_stay_within_the_floor_hubspot_allows(ran: dict[str, Any]) -> None:
    for name, s in _scenarios(ran).items():
        allowed = EXTRA.get(name, {})
        for bucket, row in s["by_bucket"].items():
            assert row["minimum"] <= row["actual"] <= row["minimum"] + allowed.get(bucket, 0), (
                name,
                bucket,
                row,
            )
        assert "hubspot other" not in s["by_bucket"], (name, s["by_endpoint"]["hubspot"])
    quiet = _scenarios(ran)["hubspot_no_change"]
    assert quiet["reads"] == 3 and quiet["writes"] == 0, quiet["by_endpoint"]
    assert not [m for m in ran["targets_missed"] if "no_change" in m], ran["targets_missed"]


def test_the_hubspot_floor_counts_pages_and_batches_of_100() -> None:
    work = HubSpotWork(
        jira_read=250,
        crm_read={"companies": 201, "tickets": 100},
        first=True,
        jira_written=7,
        crm_written=301,
        crm_created=101,
        owners=3,
    )
    floor = work.minimum()
    assert floor["hubspot search"] == 3 + 1  # 201 companies, 100 tickets, 100 a page
    assert floor["hubspot association reads"] == 1  # the tickets' companies
    assert floor["hubspot report writes"] == 4 and floor["hubspot report associations"] == 2
    assert floor["hubspot metadata"] == 5 + 1  # schemas, 3 properties, pipelines; owners
    quiet = HubSpotWork(0, {"companies": 0, "tickets": 0}, False, 0, 0, 0).minimum()
    assert sum(quiet.values()) == 3  # one search per object and one Jira search
    assert bucket_of("hubspot", "POST /crm/v3/objects/{type}/search") == "hubspot search"
    assert bucket_of("hubspot", "POST /crm/v3/objects/{type}/batch/upsert") == (
        "hubspot report writes"
    )
    assert bucket_of("hubspot", "POST /crm/v4/associations/{from}/{to}/batch/read") == (
        "hubspot association reads"
    )
