"""Jira's side of discovery, pure: which fields hold customer ids (recognised as the
configured CRM writes them: :class:`connectors.discovery.CrmTerms`), story points, the
Epic Link, judged from ``GET /field`` and a sample of issues by type and value, not by
name."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from connectors.discovery import Candidate, Choice, CrmTerms, number, span
from connectors.jira.fields import EPIC_LINK_TYPE, STORY_POINT_ESTIMATE_TYPE
from mappings.normalise_jira import link_value

#: Jira ``schema.type`` of fields that can hold a customer id as the sync reads it
#: (mappings.normalise_jira.link_value: text, or a select option's value).
_LINK_SCHEMA_TYPES = frozenset({"string", "option"})
#: At most this many candidate fields go into the sampled search.
MAX_SAMPLED_FIELDS = 60
#: Story point estimates as teams write them; a number field holding mostly these is one.
_ESTIMATES = frozenset({0, 0.5, 1, 2, 3, 5, 8, 13, 20, 21, 34, 40, 100})
#: A tie-breaker only (names are localised).
_STORY_POINTS_NAME = re.compile(
    r"story[\s_-]*points?|故事点|storypunkte|story-punkte|points? d.histoire", re.IGNORECASE
)


def _schema(info: Mapping[str, Any]) -> Mapping[str, Any]:
    schema = info.get("schema")
    return schema if isinstance(schema, Mapping) else {}


def _is_custom(info: Mapping[str, Any]) -> bool:
    return bool(info.get("custom")) or str(info.get("id", "")).startswith("customfield_")


def field_ref(fields: Sequence[Mapping[str, Any]], field_id: str) -> str:
    """How the config names a Jira field: its name when no other field carries it
    (readable, and what the sync resolves), else its id."""
    info = next((f for f in fields if f.get("id") == field_id), None)
    name = str((info or {}).get("name") or "")
    if not name:
        return field_id
    same = [f for f in fields if str(f.get("name") or "").casefold() == name.casefold()]
    return name if len(same) == 1 else field_id


def _jira_candidate(
    fields: Sequence[Mapping[str, Any]], field_id: str, evidence: str, hits: int
) -> Candidate:
    """A Jira field as the config names it, with the other name it goes by."""
    value = field_ref(fields, field_id)
    aside = field_id if value != field_id else str(_by_id(fields, field_id).get("name") or "")
    return Candidate(value, aside, evidence, hits)


def link_field_candidates(fields: Sequence[Mapping[str, Any]]) -> list[str]:
    """Ids of the custom fields that could hold a customer id: text and single selects."""
    return [
        str(f["id"])
        for f in fields
        if _is_custom(f) and _schema(f).get("type") in _LINK_SCHEMA_TYPES
    ]


def number_field_candidates(fields: Sequence[Mapping[str, Any]]) -> list[str]:
    """Ids of the fields that could hold story points: Jira Software's estimate type and
    custom number fields."""
    return [
        str(f["id"])
        for f in fields
        if _schema(f).get("custom") == STORY_POINT_ESTIMATE_TYPE
        or (_is_custom(f) and _schema(f).get("type") == "number")
    ]


def sample_fields(fields: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every candidate field id one sampled search asks for (capped)."""
    wanted = [*link_field_candidates(fields), *number_field_candidates(fields)]
    return list(dict.fromkeys(wanted))[:MAX_SAMPLED_FIELDS]


def _customer_id(terms: CrmTerms, value: object) -> str | None:
    """The customer id a field value names, read as the sync reads it."""
    return terms.customer_id(link_value(value))


def sampled_customer_ids(
    fields: Sequence[Mapping[str, Any]], issues: Sequence[Mapping[str, Any]], terms: CrmTerms
) -> set[str]:
    """Every customer id the sampled issues hold in a candidate field."""
    ids: set[str] = set()
    for field_id in link_field_candidates(fields):
        for issue in issues:
            found = _customer_id(terms, (issue.get("fields") or {}).get(field_id))
            if found:
                ids.add(found)
    return ids


def account_link_choice(
    fields: Sequence[Mapping[str, Any]],
    issues: Sequence[Mapping[str, Any]],
    terms: CrmTerms,
    known: set[str] | None = None,
) -> Choice:
    """The Jira field that holds CRM customer ids: the text or select field in which most
    sampled issues hold one (``known``: the ids the CRM confirmed, which rank first when
    given; then a field none of whose ids the CRM holds is not chosen)."""
    ranked: list[tuple[tuple[int, int], Candidate]] = []
    for field_id in link_field_candidates(fields):
        values = [_customer_id(terms, (i.get("fields") or {}).get(field_id)) for i in issues]
        ids = [v for v in values if v]
        kind = (
            "select field"
            if _schema(_by_id(fields, field_id)).get("type") == "option"
            else "text field"
        )
        noun = terms.id_noun
        evidence = f"{kind}; {len(ids)} of {len(issues)} sampled issues hold {_a(noun)} {noun}"
        found = 0
        if ids:
            distinct = set(ids)
            evidence += f", {len(distinct)} distinct"
            if known is not None:
                found = len(distinct & known)
                held = f"{terms.customers} in {terms.name}"
                evidence += (
                    f", all of them {held}"
                    if found == len(distinct)
                    else f", {found} of them {held}"
                )
        candidate = _jira_candidate(fields, field_id, evidence, len(ids))
        ranked.append(((found, len(ids)), candidate))
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    candidates = [c for _, c in ranked]
    # Asked, the CRM must hold at least one of the ids: a field of other numbers (HubSpot's
    # ids are plain digits) is not taken for one of customer ids.
    confirmed = known is None or bool(ranked and ranked[0][0][0])
    chosen = candidates[0] if candidates and candidates[0].hits and confirmed else None
    return Choice(
        "link",
        "jira_field",
        chosen,
        tuple(c for c in candidates if c is not chosen),
        missing=(
            f"no text field holds {_a(terms.id_noun)} {terms.id_noun} in {len(issues)} "
            "sampled issues; the "
            "jira_field rule is left out (add one, or link by crm_field or static)"
        ),
    )


def _a(noun: str) -> str:
    """The article before ``noun``: ``a`` or ``an``, by its first letter."""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _by_id(fields: Sequence[Mapping[str, Any]], field_id: str) -> Mapping[str, Any]:
    return next((f for f in fields if f.get("id") == field_id), {})


def story_points_choice(
    fields: Sequence[Mapping[str, Any]], issues: Sequence[Mapping[str, Any]]
) -> Choice:
    """The story points field: Jira Software's estimate type, or a number field, ranked by
    how many sampled issues hold an estimate in it; a number field named like story
    points, or of the estimate type, wins a tie (and is chosen even with no value seen)."""
    ranked: list[tuple[tuple[int, int, int], Candidate]] = []
    for field_id in number_field_candidates(fields):
        info = _by_id(fields, field_id)
        typed = _schema(info).get("custom") == STORY_POINT_ESTIMATE_TYPE
        named = bool(_STORY_POINTS_NAME.search(str(info.get("name") or "")))
        values = [number((i.get("fields") or {}).get(field_id)) for i in issues]
        held = [v for v in values if v is not None and v >= 0]
        estimates = sum(1 for v in held if v in _ESTIMATES)
        kind = "story point estimate field" if typed else "number field"
        if named and not typed:
            kind += " named like story points"
        evidence = f"{kind}; {len(held)} of {len(issues)} sampled issues hold a value"
        if held:
            evidence += f", {span(held)}"
        # Estimate-shaped values speak louder than a name, a name or type louder than none.
        rank = (1 if held and estimates * 2 >= len(held) else 0, int(typed or named), len(held))
        ranked.append(
            (
                rank,
                _jira_candidate(fields, field_id, evidence, len(held)),
            )
        )
    ranked.sort(key=lambda pair: pair[0], reverse=True)
    chosen = next(
        (c for rank, c in ranked if rank[0] or rank[1]),
        None,
    )
    return Choice(
        "progress",
        "story_points_field",
        chosen,
        tuple(c for _, c in ranked if c is not chosen),
        missing=(
            "no number field holds story points in the sample; left empty, so "
            'measure = "story_points" cannot be used until one is named'
        ),
    )


def epic_link_choice(fields: Sequence[Mapping[str, Any]]) -> Choice:
    """The Epic Link field, by its type (company-managed projects, Server/Data Center)."""
    found = [str(f["id"]) for f in fields if _schema(f).get("custom") == EPIC_LINK_TYPE]
    candidates = [
        _jira_candidate(fields, fid, f"found by its type, {EPIC_LINK_TYPE}", 1) for fid in found
    ]
    return Choice(
        "jira",
        "epic_link",
        candidates[0] if len(candidates) == 1 else None,
        tuple(candidates[1:]) if len(candidates) == 1 else tuple(candidates),
        missing=(
            "none on this site (team-managed projects and new Cloud sites use parent)"
            if not candidates
            else f"{len(candidates)} fields of the Epic Link type"
        ),
    )
