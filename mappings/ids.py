"""Customer ids as the mapping layer compares them: in the one form the CRM gives them.

How a CRM's ids may be written (two spellings of one id, say) is the CRM's business: its
connector knows. The sync hands the mapping layer that knowledge as an :data:`IdForm`;
without one, an id is its text, trimmed.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["IdForm", "plain_id"]

#: The canonical form of a customer id given in any form the CRM accepts; None when the
#: value is not an id of it.
IdForm = Callable[[object], str | None]


def plain_id(value: object) -> str | None:
    """An id that is its own canonical form: text (or a whole number), trimmed; None for
    anything else or an empty text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text or None
