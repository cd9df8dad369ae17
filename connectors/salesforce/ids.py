"""Salesforce record Ids: 15-character (case-sensitive) and 18-character (case-safe) forms.

The 18-character Id is the 15-character one plus three checksum characters that encode
which of its letters are upper case, so both forms of one record normalise to the same
18-character Id here, and an 18-character Id whose letters lost their case is repaired.
"""

from __future__ import annotations

__all__ = ["canonical_id", "checksum"]

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SUFFIX_BITS = {char: bits for bits, char in enumerate(_SUFFIX)}
_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_cache: dict[str, str | None] = {}


def checksum(base: str) -> str:
    """The three-character case checksum of a 15-character Id."""
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for offset, char in enumerate(base[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << offset
        suffix += _SUFFIX[bits]
    return suffix


def _recase(base: str, suffix: str) -> str | None:
    """Restore the letter case of ``base`` from the checksum ``suffix``; None if impossible."""
    chars = list(base)
    for chunk, code in enumerate(suffix.upper()):
        bits = _SUFFIX_BITS.get(code)
        if bits is None:
            return None
        for offset in range(5):
            index = chunk * 5 + offset
            char = chars[index]
            upper = bool(bits & (1 << offset))
            if char.isalpha():
                chars[index] = char.upper() if upper else char.lower()
            elif upper:
                return None  # the checksum marks a digit as an upper-case letter
    return "".join(chars)


def _compute(text: str) -> str | None:
    if len(text) not in (15, 18) or not _ALNUM.issuperset(text):
        return None
    if len(text) == 15:
        return text + checksum(text)
    base = _recase(text[:15], text[15:])
    return None if base is None else base + checksum(base)


def canonical_id(value: object) -> str | None:
    """The 18-character form of a Salesforce Id given in either form; None if not an Id.

    Surrounding whitespace is ignored. Results are cached: the same few thousand account
    Ids recur on every issue of a project.
    """
    if not isinstance(value, str):
        return None
    try:
        return _cache[value]
    except KeyError:
        pass
    result = _compute(value.strip())
    if len(_cache) < 1_000_000:
        _cache[value] = result
    return result
