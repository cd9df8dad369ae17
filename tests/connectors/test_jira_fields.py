"""Identifying Jira's fields by type (issue 14, items 1, 3 and 5): the sandbox's /field of
a localised site, an older Server and a site with both project styles, read through the
real ``jira`` client; what a pull asks for; what a config error says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.exceptions import ConfigError
from connectors.jira.fields import (
    EPIC_LINK_TYPE,
    NUMBER_TYPE,
    STORY_POINT_ESTIMATE_TYPE,
    FieldCatalog,
    field_type,
)
from connectors.sandbox.stack import Sandbox
from tests.connectors.test_jira_pull import connector_for

ANCHOR = datetime(2026, 3, 2, tzinfo=UTC)
EPIC_LINK = "customfield_10014"
STORY_POINTS = "customfield_10016"
ESTIMATE = "customfield_10035"


def _catalog(mode: str = "cloud", locale: str = "en") -> FieldCatalog:
    box = Sandbox(issues=20, accounts=5, seed=4, anchor=ANCHOR, jira_mode=mode, locale=locale)
    with box.in_process() as ends:
        return connector_for(box, ends.jira_url).field_catalog()


@pytest.mark.parametrize(
    ("locale", "name"), [("en", "Epic Link"), ("zh", "史诗链接"), ("de", "Epic-Verknüpfung")]
)
@pytest.mark.parametrize("mode", ["cloud", "server"])
def test_the_epic_link_field_is_found_by_its_type_in_any_language(
    mode: str, locale: str, name: str
) -> None:
    catalog = _catalog(mode, locale)
    carrying = catalog.named(name)
    assert EPIC_LINK in {f["id"] for f in carrying}
    if locale != "en":  # an app's text field repeats the name
        assert len(carrying) == 2
    assert catalog.epic_link() == EPIC_LINK
    assert [f["id"] for f in catalog.of_type(EPIC_LINK_TYPE)] == [EPIC_LINK]


def test_the_epic_link_field_by_name_when_no_field_has_its_type() -> None:
    plain = [{"id": "summary", "name": "Summary", "schema": {"type": "string"}}]
    named = {"id": "customfield_1", "name": "Epic Link", "schema": {"type": "any"}}
    assert FieldCatalog([*plain, named]).epic_link() == "customfield_1"
    assert FieldCatalog(plain).epic_link() is None  # team-managed only: parent alone
    twice = [*plain, named, {**named, "id": "customfield_2"}]
    assert FieldCatalog(twice).epic_link() is None  # neither typed nor unique: no guess


def test_both_story_points_fields_are_read_on_a_site_with_both_project_styles() -> None:
    catalog = _catalog()
    assert field_type(catalog.by_id[STORY_POINTS]) == NUMBER_TYPE
    assert field_type(catalog.by_id[ESTIMATE]) == STORY_POINT_ESTIMATE_TYPE
    assert catalog.story_points("Story Points") == (STORY_POINTS, (ESTIMATE,))
    assert catalog.story_points("Story point estimate") == (ESTIMATE, ())
    # An older Server has no team-managed projects, so no estimate field.
    assert _catalog("server").story_points("Story Points") == (STORY_POINTS, ())


def test_a_story_points_name_that_several_fields_carry_is_settled_by_type() -> None:
    catalog = _catalog(locale="zh")
    assert [f["id"] for f in catalog.named("故事点数")] == [STORY_POINTS, "customfield_10402"]
    assert catalog.story_points("故事点数", "[progress] story_points_field")[0] == STORY_POINTS
    # The same name for a field of no known kind stays ambiguous, its candidates by type.
    with pytest.raises(ConfigError) as caught:
        catalog.resolve("故事点数", "[link] jira_field")
    message = str(caught.value)
    assert "ambiguous" in message and "[link] jira_field" in message
    assert f"{STORY_POINTS} (number), customfield_10402 (text)" in message


def test_a_missing_story_points_name_proposes_the_story_points_fields() -> None:
    catalog = _catalog(locale="de")
    with pytest.raises(ConfigError) as caught:
        catalog.story_points("Story Points", "[progress] story_points_field")
    message = str(caught.value)
    assert 'no field named "Story Points" (set in [progress] story_points_field)' in message
    assert (
        "the site's story-points fields: "
        f'"Schätzung der Story-Punkte" ({ESTIMATE}, story point estimate), '
        f'"Story-Punkte" ({STORY_POINTS}, number)'
    ) in message
    assert "configure one by its id" in message


def test_an_ambiguous_name_lists_each_candidate_with_its_type() -> None:
    with pytest.raises(ConfigError) as caught:
        _catalog().resolve("Customer Tier")
    assert "customfield_10200 (select list), customfield_10201 (text)" in str(caught.value)


def test_a_pull_asks_only_for_the_fields_an_older_server_has() -> None:
    """Server's /field lists no parent (nor statuscategorychangedate): the pull is not
    refused, leaves out what the site lacks, and still asks for the implied parent."""
    box = Sandbox(issues=40, accounts=5, seed=4, anchor=ANCHOR, jira_mode="server")
    wanted = ["summary", "issuetype", "parent", "statuscategorychangedate", EPIC_LINK]
    with box.in_process() as ends:
        connector = connector_for(box, ends.jira_url)
        assert "parent" not in connector.field_catalog().by_id
        issues = [issue for page in connector.pull_issues(wanted) for issue in page]
        with pytest.raises(ConfigError, match="no field with id customfield_99999"):
            connector.pull_issues(["summary", "customfield_99999"])
    assert len(issues) == 40
    for issue in issues:
        fields = issue["fields"]
        assert "statuscategorychangedate" not in fields
        assert "hierarchyLevel" not in fields["issuetype"]
        subtask = fields["issuetype"]["subtask"]
        # Stories carry no parent (the Epic Link holds the epic); sub-tasks do.
        assert ("parent" in fields) == subtask
        if subtask:
            assert fields[EPIC_LINK] is None
    assert any(i["fields"]["issuetype"]["subtask"] for i in issues)
    assert any(i["fields"][EPIC_LINK] for i in issues)
