"""Field values: JSON in (validated and coerced as Salesforce does) and JSON out.

Records are stored with Python values (``datetime`` in UTC, ``date``, ``float``, ``bool``,
``str``, ``bytes`` for base64); these functions are the only place that converts.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from connectors.sandbox.salesforce.metadata import ID_TYPES, NUMBER_TYPES, TEXT_TYPES, FieldDef
from connectors.sandbox.salesforce.metadata import normalize_id as _normalize_id


class FieldValueError(ValueError):
    """A record a write cannot accept: Salesforce's status code, message, fields, HTTP status."""

    def __init__(
        self, code: str, message: str, fields: list[str] | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or []
        self.status = status

    def as_error(self) -> dict[str, Any]:
        """The entry of an ``errors`` list (Collections) or of an error response."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


_TZ_RE = re.compile(r"([+-]\d{2})(\d{2})$")


def now_ms(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to milliseconds as Salesforce stores it."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_datetime(value: datetime) -> str:
    """``2013-05-20T20:49:32.000+0000``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime | None:
    """An ISO-8601 date-time with a zone (``Z``, ``+0000``, ``+08:00``), or a date; else None."""
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        except ValueError:
            return None
    if not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?", text
    ):
        return None
    text = _TZ_RE.sub(r"\1:\2", text.replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return now_ms(parsed)


def to_json(fdef: FieldDef, value: Any, url: str | None = None) -> Any:
    """A stored value as the REST API renders it (``url`` stands in for base64 content)."""
    if value is None:
        return None
    kind = fdef.type
    if kind == "datetime":
        return format_datetime(value)
    if kind == "date":
        return value.isoformat()
    if kind == "base64":
        return url
    if kind in ("double", "percent", "currency"):
        return float(value)
    return value


def _label(fdef: FieldDef) -> str:
    return fdef.label or fdef.name


def _json_token(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER_INT" if isinstance(value, int) else "VALUE_NUMBER_FLOAT"
    return "VALUE_STRING"


def _parser_error(fdef: FieldDef, type_name: str, value: Any) -> FieldValueError:
    shown = "{" if isinstance(value, dict) else "[" if isinstance(value, list) else value
    return FieldValueError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {type_name} from {_json_token(value)} value {shown} "
        "or request may be missing a required field",
        [fdef.name],
    )


def _not_of_type(fdef: FieldDef, value: Any) -> FieldValueError:
    return FieldValueError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{_label(fdef)}: value not of required type: {value}",
        [fdef.name],
    )


def _number(fdef: FieldDef, value: Any) -> float | int:
    if isinstance(value, (bool, dict, list)):
        raise _parser_error(fdef, "double" if fdef.type != "int" else "int", value)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _not_of_type(fdef, value) from None
    if not number.is_finite():
        raise _not_of_type(fdef, value)
    if fdef.type == "int":
        if number != number.to_integral_value():
            raise _not_of_type(fdef, value)
        return int(number)
    if fdef.precision:
        number = number.quantize(Decimal(1).scaleb(-fdef.scale), rounding=ROUND_HALF_UP)
        integer_digits = len(str(abs(int(number)))) if int(number) else 0
        if integer_digits > fdef.precision - fdef.scale:
            raise FieldValueError(
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{_label(fdef)}: value outside of valid range on numeric field: {value}",
                [fdef.name],
            )
    return float(number)


def _text(fdef: FieldDef, value: Any) -> str:
    if isinstance(value, (bool, dict, list)):
        raise _parser_error(fdef, "string", value)
    text = value if isinstance(value, str) else str(value)
    if fdef.length and len(text) > fdef.length:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise FieldValueError(
            "STRING_TOO_LONG",
            f"{_label(fdef)}: data value too large: {shown} (max length={fdef.length})",
            [fdef.name],
        )
    if fdef.type == "picklist" and fdef.restricted and text not in fdef.picklist:
        raise FieldValueError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{_label(fdef)}: bad value for restricted picklist field: {text}",
            [fdef.name],
        )
    return text


def from_json(fdef: FieldDef, value: Any) -> Any:
    """Validate and coerce one JSON value for ``fdef``; raises :class:`FieldValueError`."""
    kind = fdef.type
    if value is None or value == "":
        return None  # Salesforce stores an empty string as null
    if kind in TEXT_TYPES:
        return _text(fdef, value)
    if kind in NUMBER_TYPES:
        return _number(fdef, value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _parser_error(fdef, "boolean", value)
    if kind in ("date", "datetime"):
        if not isinstance(value, str):
            raise _parser_error(fdef, kind, value)
        parsed = parse_datetime(value)
        if parsed is None:
            raise _not_of_type(fdef, value)
        return parsed.date() if kind == "date" else parsed
    if kind in ID_TYPES:
        if not isinstance(value, str):
            raise _parser_error(fdef, "string", value)
        normalized = _normalize_id(value)
        if normalized is None:
            raise FieldValueError(
                "MALFORMED_ID", f"{_label(fdef)}: id value of incorrect type: {value}", [fdef.name]
            )
        return normalized
    if kind == "base64":
        if not isinstance(value, str):
            raise _parser_error(fdef, "base64", value)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _not_of_type(fdef, value[:40]) from None
    raise _not_of_type(fdef, value)  # pragma: no cover - every declared type is handled
