"""Name similarity for suggested links: company forms and project words do not count,
full-width forms fold, CJK names compare without spaces, and ranking is best first."""

from __future__ import annotations

import pytest

from mappings.similarity import NameIndex, core, similarity, tokens


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Acme Corp 3", "acme"),
        ("Pied Piper Systems 15", "pied piper"),
        ("Orion Rollout", "orion"),
        ("星辰云科技有限公司（12）", "星辰云"),
        ("长城软件股份有限公司", "长城"),
        ("Apollo 实施项目", "apollo"),
        ("ＡＣＭＥ　Ｌｔｄ", "acme"),  # full-width letters and space fold to ASCII
        ("Group Ltd", "group ltd"),  # nothing distinctive left: the whole name counts
    ],
)
def test_core_keeps_what_names_the_entity(name: str, expected: str) -> None:
    assert core(name) == expected


def test_cjk_names_are_tokenised_into_bigrams() -> None:
    assert tokens("星辰云科技有限公司") == frozenset({"星辰", "辰云"})
    assert tokens("Orion Labs 7") == frozenset({"orion"})


def test_the_same_name_under_other_company_forms_is_a_full_match() -> None:
    assert similarity("Orion Rollout", "Orion Labs 7") == 1.0
    assert similarity("星辰云平台", "星辰云科技有限公司（88）") == 1.0
    assert similarity("ORION", "orion systems") == 1.0


def test_unrelated_names_score_low_in_either_script() -> None:
    assert similarity("星辰云平台", "华为科技有限公司") == 0.0
    assert similarity("Apollo Rollout", "Orion Labs") < 0.5
    assert similarity("Apollo", "星辰云") == 0.0


def test_partial_and_near_miss_names_score_in_between() -> None:
    partial = similarity("星辰数据平台", "星辰云科技有限公司")
    near = similarity("Globex", "Globox Industries")
    assert 0.5 <= partial < 1.0
    assert 0.5 <= near < 1.0


def _customers() -> NameIndex:
    return NameIndex(
        [
            ("001A", ["Orion Labs 7"]),
            ("001B", ["Orion Holdings 2"]),
            ("001C", ["Orbital Systems"]),
            ("001D", ["星辰云科技有限公司（12）"]),
            ("001E", ["Acme Corp 1"]),
            ("001F", [""]),
        ]
    )


def test_rank_orders_best_first_with_ties_broken_by_the_whole_name() -> None:
    found = _customers().rank(["ORION", "Orion Rollout"])
    assert [s.id for s in found] == ["001A", "001B"]  # "Orion Labs" is nearer "Orion Rollout"
    assert [s.score for s in found] == [1.0, 1.0]


def test_rank_finds_cjk_candidates_and_respects_limit_threshold_and_exclude() -> None:
    index = _customers()
    assert [s.id for s in index.rank(["XY", "星辰云平台"])] == ["001D"]
    assert index.rank(["Orion"], limit=1)[0].id == "001A"
    assert [s.id for s in index.rank(["Orion"], exclude=["001A"])] == ["001B"]
    assert index.rank(["Umbrella"]) == ()
    assert index.rank([""]) == ()
    low = index.rank(["Orbit"], threshold=0.0)
    assert low and all(0.0 <= s.score <= 1.0 for s in low)


def test_projects_are_found_by_key_or_name() -> None:
    projects = NameIndex(
        [("APOLLO", ["APOLLO", "星辰云平台"]), ("ORION", ["ORION", "Orion Rollout"])]
    )
    assert projects.rank(["星辰云科技有限公司（88）"])[0].id == "APOLLO"
    assert projects.rank(["Apollo Group 4"])[0].id == "APOLLO"
    best = projects.rank(["Orion Labs 99"])[0]
    assert (best.id, best.name) == ("ORION", "Orion Rollout")
