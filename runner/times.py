"""Times and durations, in one place: the zones times are read and shown in, moments parsed from what people type
and from what ir stores, moments made zone-aware, durations read from playbooks and answers files (`1h30m`) and
written for people (`2d 3h 04m`, `4m 10s`).

Times always carry a time zone: `2026-03-29 14:02 America/Los_Angeles`, `2026-03-29T14:02-07:00`, or a naive
time in the zone given by `IR_TZ` (else the system's zone, else UTC), which the value then records explicitly.
Abbreviations (PST, CET) are refused with the IANA name and offset they most often mean. A time given in a named
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
    """The zone of a time given without one: IR_TZ, else the system's zone (TZ, else /etc/localtime), else UTC."""
    return assumed_zone()[0]


def assumed_zone() -> tuple[tzinfo, str]:
    """The zone of a time given without one, and where it comes from: `IR_TZ`, `the system zone` or `UTC`."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("IR_TZ")
    if name:
        try:
            return ZoneInfo(name), "IR_TZ"  # IR_TZ=UTC is kept by its name: `...+00:00[UTC]`
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"IR_TZ={name!r} is not a time zone; set an IANA name such as Europe/Berlin") from None
    system = _system_zone_name()
    if system and system not in _UTC_NAMES:
        try:
            return ZoneInfo(system), "the system zone"
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a TZ of POSIX rules (EST5EDT,M3.2.0,...) or a broken link: not a zone ir can name
    return UTC, "UTC" if not system else "the system zone"


_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu", "Etc/GMT", "GMT", "UCT", "Etc/UCT"}


def _system_zone_name() -> str | None:
    """The system's zone as an IANA name: TZ (`:Europe/Berlin` too), else the zone /etc/localtime links to."""
    name = os.environ.get("TZ", "").removeprefix(":")
    if name:
        return name
    try:
        link = os.readlink("/etc/localtime")
    except OSError:
        return None
    return link.partition("zoneinfo/")[2] or None


def zone_given(text: str) -> bool:
    """Whether a time as typed names its zone or offset (else parse_time reads it in `assumed_zone()`)."""
    text = text.strip()
    if text.endswith("]") and "[" in text:
        return True
    head, _, last = text.rpartition(" ")
    if head and ("/" in last or last in ("UTC", "Z")):
        return True
    return _iso(text).tzinfo is not None


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
    the moment, and a critical `[!zone]` must agree with it). Without a zone: `assumed_zone()`'s."""
    text = text.strip()
    if text.endswith("]") and "[" in text:
        return _rfc9557(text)
    named: tzinfo | None = None
    head, _, last = text.rpartition(" ")
    if head and last.isalpha() and last.isupper() and last not in ("UTC", "Z"):
        raise ValueError(_abbreviation(last))
    if head and ("/" in last or last in ("UTC", "Z")):
        named = zone(last)
        text = head
    found = _iso(text)
    if found.tzinfo is None:
        found = found.replace(tzinfo=named or default_zone())
    elif named is not None:
        raise ValueError("give either an offset or a time zone name, not both")
    return found


# Abbreviations people type, with the zone and the standard offset each usually means; none is a zone ir reads,
# since most name several (CST: Chicago, China, Cuba; IST: India, Ireland, Israel) and none says when DST applies.
_ABBREVIATIONS = {
    "PST": ("America/Los_Angeles", "-08:00"), "PDT": ("America/Los_Angeles", "-07:00"),
    "MST": ("America/Denver", "-07:00"), "MDT": ("America/Denver", "-06:00"),
    "CST": ("America/Chicago", "-06:00"), "CDT": ("America/Chicago", "-05:00"),
    "EST": ("America/New_York", "-05:00"), "EDT": ("America/New_York", "-04:00"),
    "AKST": ("America/Anchorage", "-09:00"), "HST": ("Pacific/Honolulu", "-10:00"),
    "GMT": ("Europe/London", "+00:00"), "BST": ("Europe/London", "+01:00"),
    "CET": ("Europe/Berlin", "+01:00"), "CEST": ("Europe/Berlin", "+02:00"),
    "EET": ("Europe/Athens", "+02:00"), "EEST": ("Europe/Athens", "+03:00"),
    "IST": ("Asia/Kolkata", "+05:30"), "JST": ("Asia/Tokyo", "+09:00"),
    "AEST": ("Australia/Sydney", "+10:00"), "AEDT": ("Australia/Sydney", "+11:00"),
}


def _abbreviation(word: str) -> str:
    if word in _ABBREVIATIONS:
        name, offset = _ABBREVIATIONS[word]
        return f"{word} is ambiguous: use {name} or {offset}"
    return f"{word} is not a time zone ir can read: use an IANA name such as Europe/Berlin, or an offset such as -08:00"


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
