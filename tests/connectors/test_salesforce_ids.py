"""Salesforce Id forms: 15 and 18 characters, case restored from the checksum."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.salesforce.ids import canonical_id, checksum

ACME_18 = "001Dn0000000001IAA"
ACME_15 = ACME_18[:15]


def test_checksum_of_a_known_id() -> None:
    # 001Dn000000000 1 -> chunks "001Dn", "00000", "00001": D upper in the first (bit 3 = I).
    assert checksum("001Dn0000000001") == "IAA"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (ACME_18, ACME_18),
        (ACME_15, ACME_18),
        (f"  {ACME_18}\n", ACME_18),
        (ACME_18.lower(), ACME_18),  # case restored from the checksum
        (ACME_18.upper(), ACME_18),
        ("001dn0000000001", "001dn0000000001AAA"),  # a different (lower-case) 15-char Id
    ],
)
def test_canonical_id_normalises_both_forms(raw: str, expected: str) -> None:
    assert canonical_id(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "not-an-id", "001Dn00000000011", "001Dn0000000001I!A", None, 42]
)
def test_canonical_id_rejects_what_is_not_an_id(raw: object) -> None:
    assert canonical_id(raw) is None


def test_a_checksum_marking_a_digit_upper_case_is_not_an_id() -> None:
    assert canonical_id("000000000000000" + "B" + "AA") is None


@given(
    st.text(
        alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        min_size=15,
        max_size=15,
    )
)
def test_15_and_18_forms_agree_and_18_round_trips(base: str) -> None:
    full = canonical_id(base)
    assert full is not None and full[:15] == base
    assert canonical_id(full) == full
    assert canonical_id(full.lower()) == full
    assert canonical_id(full.upper()) == full
