"""HubSpot's record form: numeric ids in one canonical form, stored customers as kept."""

from __future__ import annotations

import pytest

from connectors.hubspot.kinds import canonical_id, form
from tests.connectors.hubspot_portal import needs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4410001", "4410001"),
        ("  4410001 ", "4410001"),
        (4410001, "4410001"),
        ("", None),
        ("0015000000AbCdE", None),  # a Salesforce id is no HubSpot id
        ("12a", None),
        ("١٢", None),  # non-ASCII digits
        (True, None),
        (0, None),
        (None, None),
        ("1" * 21, None),
    ],
)
def test_canonical_id_is_the_digits(value: object, expected: str | None) -> None:
    assert canonical_id(value) == expected


def test_form_keeps_stored_customers_as_they_are() -> None:
    stored = {"id": "12", "name": "Acme", "segment": "SMB", "deleted": False}
    record_form = form(needs())
    assert record_form.customer_id(" 12 ") == "12"
    assert record_form.stored_customer(stored) == stored
    assert record_form.stored_customer(stored) is not stored
