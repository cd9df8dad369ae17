"""Jira's field catalogue (``GET /field``) and resolving configured field names to ids.

Display names are not unique in Jira (two apps can both add "Customer Tier"), so a name
resolves only when exactly one field carries it; otherwise the message names every
candidate and asks for the id.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from connectors.exceptions import ConfigError
from connectors.jira.settings import SIDE

_CUSTOM_ID = re.compile(r"customfield_(\d+)")
_CLAUSE_ID = re.compile(r"cf\[(\d+)\]", re.IGNORECASE)


class FieldCatalog:
    """The fields of one Jira site, looked up by id or display name."""

    def __init__(self, fields: Iterable[Mapping[str, Any]]) -> None:
        self.fields = [dict(f) for f in fields]
        self.by_id: dict[str, dict[str, Any]] = {str(f["id"]): f for f in self.fields}
        self._by_name: dict[str, list[str]] = {}
        self._by_folded: dict[str, list[str]] = {}
        for f in self.fields:
            name = str(f.get("name") or "")
            self._by_name.setdefault(name, []).append(str(f["id"]))
            self._by_folded.setdefault(name.casefold(), []).append(str(f["id"]))

    def name_of(self, field_id: str) -> str:
        """The display name of a field id (the id itself when unknown)."""
        return str(self.by_id.get(field_id, {}).get("name") or field_id)

    def resolve(self, ref: str, setting: str | None = None) -> str:
        """The id of a field given by id (``customfield_10100``, ``cf[10100]``, ``duedate``)
        or by display name; ConfigError when missing or ambiguous.

        ``setting`` names the config key that holds ``ref``, for the message.
        """
        ref = ref.strip()
        where = f" (set in {setting})" if setting else ""
        clause = _CLAUSE_ID.fullmatch(ref)
        candidate = f"customfield_{clause.group(1)}" if clause else ref
        if candidate in self.by_id:
            return candidate
        if _CUSTOM_ID.fullmatch(candidate):
            raise ConfigError(
                f"Jira has no field with id {candidate}{where}; check the id in Jira's field "
                "settings, or configure the field by its name",
                side=SIDE,
            )
        ids = self._by_name.get(ref) or self._by_folded.get(ref.casefold()) or []
        if len(ids) == 1:
            return ids[0]
        if ids:
            listed = ", ".join(ids)
            raise ConfigError(
                f'the Jira field name "{ref}"{where} is ambiguous: {len(ids)} fields carry it '
                f"({listed}); configure the field id instead of the name, e.g. "
                f'"{ids[0]}"',
                side=SIDE,
            )
        raise ConfigError(
            f'Jira has no field named "{ref}"{where}; {self._suggest(ref)}', side=SIDE
        )

    def _suggest(self, ref: str) -> str:
        folded = {name.casefold(): name for name in self._by_name if name}
        close = difflib.get_close_matches(ref.casefold(), list(folded), n=5, cutoff=0.6)
        if not close:
            return "names are matched exactly; see Jira's field settings for the right one"
        described = ", ".join(
            f'"{folded[c]}" ({", ".join(self._by_name[folded[c]])})' for c in close
        )
        return f"close names: {described}"
