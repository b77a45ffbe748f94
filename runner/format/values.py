"""Typed values: reading what a responder types (or an answers file holds) into Python values, and back.

Times are read by `ir.times.parse_time` and always carry a time zone; one given in a named zone keeps the name
when stored (RFC 9557: `2026-03-29T14:02:00-07:00[America/Los_Angeles]`).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from ir.format.model import Variable
from ir.times import parse_time

_HASH_LENGTHS = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,62}$", re.I)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$", re.I)
_TRUE, _FALSE = {"y", "yes", "true", "1", "on"}, {"n", "no", "false", "0", "off"}


def parse(var: Variable, raw: Any) -> Any:
    """Check and convert one value for `var`; raises ValueError with a message for the responder."""
    kind = var.type
    if kind in ("list", "multi-choice"):
        items = raw if isinstance(raw, list) else [p.strip() for p in str(raw).split(",") if p.strip()]
        items = [str(i) for i in items]
        bad = [i for i in items if var.choices and i not in var.choices]
        if bad:
            raise ValueError(f"{', '.join(bad)} not among the choices: {', '.join(var.choices or [])}")
        return items
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise ValueError("answer yes or no")
    if kind == "integer":
        if isinstance(raw, bool):
            raise ValueError("a whole number is needed")
        try:
            number = int(str(raw).strip())
        except ValueError:
            raise ValueError("a whole number is needed") from None
        return within(number, var.min if isinstance(var.min, int) else None,
                      var.max if isinstance(var.max, int) else None)
    if kind == "date":
        if isinstance(raw, date) and not isinstance(raw, datetime):
            return raw
        try:
            if not _DATE.fullmatch(text := str(raw).strip()):  # fromisoformat also reads 20260722 and 2026-W30-3
                raise ValueError(text)
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError("a date like 2026-07-22 is needed") from None
    if kind == "datetime":
        return raw if isinstance(raw, datetime) and raw.tzinfo else parse_time(str(raw))
    text = str(raw).strip()
    if not text:
        raise ValueError("a value is needed")
    return _CHECKS.get(kind, lambda t, v: t)(text, var)


def within(number: int, low: int | None, high: int | None, low_from: str = "", high_from: str = "") -> int:
    """`number` when it lies between the bounds given (None: no bound); `*_from` names a bound's source."""
    if low is not None and number < low:
        raise ValueError(f"{number} is less than the minimum, {low}" + (f" ({low_from})" if low_from else ""))
    if high is not None and number > high:
        raise ValueError(f"{number} is more than the maximum, {high}" + (f" ({high_from})" if high_from else ""))
    return number


def _choice(text: str, var: Variable) -> str:
    if var.choices and text not in var.choices:
        raise ValueError(f"choose one of: {', '.join(var.choices)}")
    return text


def _url(text: str, var: Variable) -> str:
    parts = urlparse(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("a full http(s):// URL is needed")
    return text


def _pattern(regex: re.Pattern[str], what: str) -> Any:
    def check(text: str, var: Variable) -> str:
        if not regex.match(text):
            raise ValueError(f"{text!r} is not {what}")
        return text

    return check


def _ip(text: str, var: Variable) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an IPv4 or IPv6 address") from None


def _hash(text: str, var: Variable) -> str:
    if len(text) not in _HASH_LENGTHS or not re.fullmatch(r"[0-9a-fA-F]+", text):
        raise ValueError("a hex MD5, SHA-1, SHA-256 or SHA-512 hash is needed")
    return text.lower()


_CHECKS = {
    "choice": _choice, "url": _url, "ip": _ip, "hash": _hash,
    "email": _pattern(_EMAIL, "an e-mail address"), "domain": _pattern(_DOMAIN, "a domain name"),
    "cve": lambda t, v: _pattern(_CVE, "a CVE id like CVE-2025-48927")(t, v).upper(),
}


def to_json(value: Any) -> Any:
    """For storage and exports: dates and times as ISO 8601 text (times keep their offset, and their zone's
    name when they have one, as RFC 9557 writes it)."""
    if isinstance(value, datetime) and isinstance(value.tzinfo, ZoneInfo):
        return f"{value.isoformat()}[{value.tzinfo.key}]"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def from_json(var: Variable, value: Any) -> Any:
    if value is None:
        return None
    if var.type == "date":
        return date.fromisoformat(value)
    if var.type == "datetime":
        return parse_time(value)
    return value
