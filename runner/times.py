"""Times and durations, in one place: the zones times are read and shown in, moments parsed from what people type
and from what ir stores, moments made zone-aware, durations read from playbooks and answers files (`1h30m`) and
written for people (`2d 3h 04m`, `4m 10s`).

Times always carry a time zone: `2026-03-29 14:02 America/Los_Angeles`, `2026-03-29T14:02-07:00`, or a naive
time in the zone given by `IR_TZ` (else UTC), which the value then records explicitly. A time given in a named
zone keeps the name when stored (RFC 9557: `2026-03-29T14:02:00-07:00[America/Los_Angeles]`), so a deadline
computed from it later is shown with the offset that zone has on that day.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


# zones -------------------------------------------------------------------------------------------------------

def zone(name: str | None) -> tzinfo:
    """UTC (none given, `UTC` or `Z`), or an IANA zone such as Europe/Berlin."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # its tz database is read only when a zone is named

    if not name or name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from None


def default_zone() -> tzinfo:
    """The zone of a time given without one: IR_TZ, else UTC."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("IR_TZ")
    try:
        return ZoneInfo(name) if name else UTC  # IR_TZ=UTC is kept by its name: `...+00:00[UTC]`
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"IR_TZ={name!r} is not a time zone; set an IANA name such as Europe/Berlin") from None


def zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or "UTC")


# moments -----------------------------------------------------------------------------------------------------

def moment(text: str) -> datetime:
    """A moment as ir stores it: ISO 8601 (`2026-03-29T21:02:00.123Z`, `2026-03-29T14:02:00-07:00`)."""
    return datetime.fromisoformat(text)


def aware(value: str | date | datetime, tz: tzinfo | None = None) -> datetime:
    """A moment that carries its zone: a datetime, or ISO 8601 text, keeps its own and otherwise takes `tz`; a
    date is midnight in `tz` (UTC when none is given). ValueError when there is no zone to take."""
    if isinstance(value, str):
        value = moment(value)
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(), tz or UTC)
    if value.tzinfo is None:
        if tz is None:
            raise ValueError(f"{value.isoformat()} has no time zone")
        value = value.replace(tzinfo=tz)
    return value


def parse_time(text: str) -> datetime:
    """A moment in time with its zone, as people write it: ISO 8601 with an offset, a date and time followed by an
    IANA zone, or RFC 9557's form (a time, with or without its offset, then the zone in brackets: the offset fixes
    the moment, and a critical `[!zone]` must agree with it). Without a zone: IR_TZ's, else UTC."""
    text = text.strip()
    if text.endswith("]") and "[" in text:
        return _rfc9557(text)
    named: tzinfo | None = None
    head, _, last = text.rpartition(" ")
    if head and ("/" in last or last in ("UTC", "Z")):
        named = zone(last)
        text = head
    found = _iso(text)
    if found.tzinfo is None:
        found = found.replace(tzinfo=named or default_zone())
    elif named is not None:
        raise ValueError("give either an offset or a time zone name, not both")
    return found


def _rfc9557(text: str) -> datetime:
    text, _, suffixes = text.partition("[")
    tags = suffixes[:-1].split("][")
    zones = [tag for tag in tags if "=" not in tag]  # the others are extensions such as u-ca=iso8601
    critical_extension = any(tag.startswith("!") for tag in tags if "=" in tag)
    if len(zones) != 1 or not zones[0].removeprefix("!") or critical_extension:
        raise ValueError("give one time zone in brackets, e.g. 2026-03-29T14:02-07:00[America/Los_Angeles]")
    name = zones[0].removeprefix("!")
    named, found = zone(name), _iso(text)
    if found.tzinfo is None:
        return found.replace(tzinfo=named)
    local = found.astimezone(named)
    if zones[0].startswith("!") and local.utcoffset() != found.utcoffset():
        raise ValueError(f"the offset {found:%z} is not {name}'s at that time")
    return local


def _iso(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time; write e.g. 2026-03-29 14:02 America/Los_Angeles "
                         "or 2026-03-29T14:02-07:00") from None


def when(value: datetime | None, tz: tzinfo) -> str:
    """A moment as a report shows it: `2026-03-29 14:02:00 PDT (-07:00)`, or `2026-03-29 21:02:00 UTC`."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    text = f"{local:%Y-%m-%d %H:%M:%S}"
    offset = local.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:5]}"
    name = local.tzname() or offset
    if name == "UTC" and offset == "+00:00":
        return f"{text} UTC"
    return f"{text} {offset}" if name.startswith(("+", "-")) else f"{text} {name} ({offset})"


# durations ---------------------------------------------------------------------------------------------------

def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> timedelta; days, hours, minutes and seconds in that order."""
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(f"{text!r} is not a duration; write it like 15m, 4h, 1h30m or 2d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def duration(delta: timedelta) -> str:
    """How long, wherever ir shows a duration: `2d 3h 04m`, `1h 05m`, `4m 10s`, `12s` (the largest unit and the
    next ones down to minutes, or minutes and seconds under an hour); negative with a minus sign."""
    seconds = int(delta.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    return f"{sign}{minutes}m {secs:02d}s" if minutes else f"{sign}{secs}s"
