"""The account's owner as Salesforce gives it (``Owner.Name`` selected): an object whose
Name is text, or null for an account without a readable owner; anything else is set
aside with the reason (issue 14)."""

from __future__ import annotations

from mappings.rules import AccountFields, SatisfactionRules
from mappings.validate import CrmCheck

CHECK = CrmCheck(AccountFields(), SatisfactionRules())
ACCOUNT = {"Id": "001Dn0000000001IAA", "Name": "Acme", "OwnerId": "005Dn0000000001IAA"}


def test_an_owner_object_with_a_name_or_none_is_readable() -> None:
    assert CHECK.problem("Account", {**ACCOUNT, "Owner": {"Name": "Olivia Owner"}}) is None
    assert CHECK.problem("Account", {**ACCOUNT, "Owner": {"Name": None}}) is None
    assert CHECK.problem("Account", {**ACCOUNT, "Owner": None}) is None
    assert CHECK.problem("Account", ACCOUNT) is None  # not selected: no value


def test_an_owner_that_is_not_a_user_object_is_set_aside() -> None:
    assert CHECK.problem("Account", {**ACCOUNT, "Owner": "Olivia"}) == (
        "Account.Owner is the text 'Olivia', not a user with a Name"
    )
    assert "not a user with a Name" in (
        CHECK.problem("Account", {**ACCOUNT, "Owner": {"Name": 7}}) or ""
    )
