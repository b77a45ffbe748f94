"""Times as responders and answers files give them: every written form, RFC 9557's included, and the mistakes;
and durations as ir shows them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ir.format.model import Variable
from ir.format.templates import add_business_days
from ir.format.values import from_json, parse, to_json
from ir.times import assumed_zone, duration, parse_duration, parse_time, zone, zone_name


@pytest.mark.parametrize(("text", "stored"), [
    ("2026-03-29 14:02 America/Los_Angeles", "2026-03-29T14:02:00-07:00[America/Los_Angeles]"),
    ("2026-03-29T14:02-07:00", "2026-03-29T14:02:00-07:00"),
    ("2026-03-29T14:02[America/Los_Angeles]", "2026-03-29T14:02:00-07:00[America/Los_Angeles]"),  # no offset
    ("2026-03-29T14:02+09:00[America/Los_Angeles]", "2026-03-28T22:02:00-07:00[America/Los_Angeles]"),  # it wins
    ("2026-03-29T14:02-07:00[America/Los_Angeles][u-ca=iso8601]", "2026-03-29T14:02:00-07:00[America/Los_Angeles]"),
    ("2026-03-29 14:02", "2026-03-29T14:02:00+02:00[Europe/Berlin]"),  # in IR_TZ
])
def test_a_time_keeps_its_moment_and_its_zone(monkeypatch, text, stored):
    monkeypatch.setenv("IR_TZ", "Europe/Berlin")
    assert to_json(parse_time(text)) == stored
    assert to_json(parse_time(stored)) == stored  # what is stored reads back as itself


@pytest.mark.parametrize(("text", "tz", "error"), [
    ("2026-03-29T14:02+09:00[!America/Los_Angeles]", None, "the offset +0900 is not America/Los_Angeles's at that "
                                                           "time"),
    ("2026-03-29T14:02-07:00[!u-ca=x][America/Los_Angeles]", None, "give one time zone in brackets, e.g. "
                                                                   "2026-03-29T14:02-07:00[America/Los_Angeles]"),
    ("2026-03-29 14:02 Mars/Olympus", None, "unknown time zone 'Mars/Olympus'; use an IANA name such as "
                                            "Europe/Berlin"),
    ("2026-03-29T14:02[]", None, "give one time zone in brackets, e.g. 2026-03-29T14:02-07:00[America/Los_Angeles]"),
    ("2026-03-29 14:02 America/Los_Angeles -07:00", None, "'2026-03-29 14:02 America/Los_Angeles -07:00' is not a "
                                                           "date and time; write e.g. 2026-03-29 14:02 "
                                                           "America/Los_Angeles or 2026-03-29T14:02-07:00"),
    ("2026-03-29 14:02", "Nope/Zone", "IR_TZ='Nope/Zone' is not a time zone; set an IANA name such as Europe/Berlin"),
])
def test_a_time_that_cannot_be_read_says_why(monkeypatch, text, tz, error):
    if tz:
        monkeypatch.setenv("IR_TZ", tz)
    with pytest.raises(ValueError) as raised:
        parse_time(text)
    assert str(raised.value) == error


@pytest.mark.parametrize(("delta", "shown"), [
    (timedelta(seconds=12), "12s"),
    (timedelta(seconds=250), "4m 10s"),
    (timedelta(hours=1, minutes=5, seconds=59), "1h 05m"),
    (timedelta(days=2, hours=3, minutes=4), "2d 3h 04m"),
    (timedelta(seconds=-250), "-4m 10s"),
])
def test_a_duration_reads_the_same_everywhere(delta, shown):
    """The report's durations, the exercise's clock and the after-action report's time per phase."""
    assert duration(delta) == shown
    assert duration(parse_duration("2d3h4m")) == "2d 3h 04m"


# What people type, read as they mean it (issue 14) -----------------------------------------------------------------
def test_a_time_said_in_utc_is_utc_whatever_ir_tz_says(monkeypatch):
    monkeypatch.setenv("IR_TZ", "Europe/Berlin")
    for text in ("2026-03-29 14:02 UTC", "2026-03-29 14:02 Z", "2026-03-29T14:02 UTC"):
        read = parse_time(text)
        assert (read.utcoffset(), read.hour, read.tzinfo) == (timedelta(0), 14, UTC), text
        assert to_json(read) == "2026-03-29T14:02:00+00:00", text


def test_a_zone_name_and_an_offset_together_are_refused_not_one_of_them_ignored():
    with pytest.raises(ValueError) as raised:
        parse_time("2026-03-29T14:02-07:00 America/Los_Angeles")
    assert str(raised.value) == "give either an offset or a time zone name, not both"
    with pytest.raises(ValueError):
        parse_time("2026-03-29T14:02+00:00 UTC")


@pytest.mark.parametrize(("word", "meant"), [
    ("no", False), ("No", False), (" n ", False), ("false", False), ("0", False), ("off", False), (False, False),
    ("yes", True), ("Y", True), ("true", True), ("1", True), ("on", True), (True, True)])
def test_a_boolean_answer_means_what_it_says(word, meant):
    assert parse(Variable(id="contained", type="boolean"), word) is meant


@pytest.mark.parametrize("word", ["maybe", "", "nope", "2"])
def test_a_boolean_answer_that_is_neither_is_asked_again(word):
    with pytest.raises(ValueError) as raised:
        parse(Variable(id="contained", type="boolean"), word)
    assert str(raised.value) == "answer yes or no"


@pytest.mark.parametrize(("start", "days", "due"), [
    ("2026-03-27T11:00:00+01:00", 1, "2026-03-30T11:00:00+01:00"),  # Friday + 1: Monday
    ("2026-03-28T11:00:00+01:00", 1, "2026-03-30T11:00:00+01:00"),  # Saturday + 1: Monday
    ("2026-03-29T11:00:00+01:00", 1, "2026-03-30T11:00:00+01:00"),  # Sunday + 1: Monday
    ("2026-03-23T11:00:00+01:00", 5, "2026-03-30T11:00:00+01:00"),  # Monday + 5: the next Monday
    ("2026-03-23T11:00:00+01:00", 10, "2026-04-06T11:00:00+01:00"),
    ("2026-03-25T11:00:00+01:00", 0, "2026-03-25T11:00:00+01:00"),
])
def test_business_days_skip_the_weekend(start, days, due):
    assert add_business_days(start, days).isoformat() == due


# Properties over the whole input space (bounded: each runs in well under a second) ----------------------------------
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Australia/Lord_Howe",
                         "America/St_Johns", "Pacific/Chatham", "Africa/Casablanca"])
MOMENTS = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC))
BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@BOUNDED
@given(MOMENTS, ZONES)
def test_any_time_stored_reads_back_as_the_same_moment_and_zone(moment, name):
    local = moment.astimezone(zone(name)).replace(microsecond=0)
    stored = to_json(local)
    read = parse_time(stored)
    assert read == local and read.utcoffset() == local.utcoffset()
    assert to_json(read) == stored
    assert zone_name(read.tzinfo) == name


@BOUNDED
@given(MOMENTS, ZONES)
def test_any_time_typed_with_its_zone_name_is_that_wall_clock_time_there(moment, name):
    wall = moment.astimezone(zone(name)).replace(microsecond=0, tzinfo=None)
    read = parse_time(f"{wall:%Y-%m-%d %H:%M:%S} {name}")
    assert read.replace(tzinfo=None) == wall
    assert zone_name(read.tzinfo) == name


@BOUNDED
@given(MOMENTS, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_any_time_with_an_offset_keeps_its_moment(moment, minutes):
    offset = timezone(timedelta(minutes=minutes))
    local = moment.astimezone(offset).replace(microsecond=0)
    read = parse_time(local.isoformat())
    assert read == local and read.utcoffset() == timedelta(minutes=minutes)
    with pytest.raises(ValueError):
        parse_time(f"{local.isoformat()} Europe/Berlin")


@BOUNDED
@given(MOMENTS, st.integers(min_value=0, max_value=40))
def test_business_days_land_on_a_weekday_after_as_many_weekdays(moment, days):
    due = add_business_days(moment, days)
    assert (due - moment).days >= days and due.time() == moment.time()
    if days:
        assert due.weekday() < 5
        between = [moment + timedelta(d) for d in range(1, (due - moment).days + 1)]
        assert sum(d.weekday() < 5 for d in between) == days


@BOUNDED
@given(st.text(max_size=12))
def test_any_boolean_answer_is_read_as_yes_or_no_or_asked_again(word):
    try:
        read = parse(Variable(id="contained", type="boolean"), word)
    except ValueError as exc:
        assert str(exc) == "answer yes or no"
        assert word.strip().lower() not in {"y", "yes", "true", "1", "on", "n", "no", "false", "0", "off"}
    else:
        assert read is (word.strip().lower() in {"y", "yes", "true", "1", "on"})


# Every type a value can have, read as written and refused with the reason (issue 14) --------------------------------
@pytest.mark.parametrize(("kind", "choices", "raw", "read"), [
    ("string", None, " 3CX ", "3CX"),
    ("list", None, "WS-1, WS-2,,", ["WS-1", "WS-2"]),
    ("list", None, ["WS-1", 2], ["WS-1", "2"]),
    ("multi-choice", ["a", "b"], "b,a", ["b", "a"]),
    ("choice", ["low", "high"], "high", "high"),
    ("integer", None, " 12 ", 12),
    ("integer", None, 7, 7),
    ("date", None, "2026-07-22", date(2026, 7, 22)),
    ("date", None, date(2026, 7, 22), date(2026, 7, 22)),
    ("url", None, "https://example.com/x", "https://example.com/x"),
    ("url", None, "http://a", "http://a"),
    ("ip", None, "10.0.0.1", "10.0.0.1"),
    ("ip", None, "2001:DB8::1", "2001:db8::1"),
    ("hash", None, "D41D8CD98F00B204E9800998ECF8427E", "d41d8cd98f00b204e9800998ecf8427e"),
    ("hash", None, "a" * 40, "a" * 40),
    ("hash", None, "a" * 64, "a" * 64),
    ("hash", None, "a" * 128, "a" * 128),
    ("email", None, "dana@example.com", "dana@example.com"),
    ("domain", None, "cdn.example.com", "cdn.example.com"),
    ("cve", None, "cve-2025-48927", "CVE-2025-48927"),
])
def test_each_type_reads_a_value_as_written(kind, choices, raw, read):
    assert parse(Variable(id="v", type=kind, choices=choices), raw) == read


@pytest.mark.parametrize(("kind", "choices", "raw", "said"), [
    ("string", None, "  ", "a value is needed"),
    ("multi-choice", ["a", "b"], "a,c,d", "c, d not among the choices: a, b"),
    ("choice", ["low", "high"], "medium", "choose one of: low, high"),
    ("integer", None, "twelve", "a whole number is needed"),
    ("integer", None, True, "a whole number is needed"),
    ("date", None, "22/07/2026", "a date like 2026-07-22 is needed"),
    ("date", None, datetime(2026, 7, 22, tzinfo=UTC), "a date like 2026-07-22 is needed"),
    ("url", None, "ftp://example.com", "a full http(s):// URL is needed"),
    ("url", None, "https://", "a full http(s):// URL is needed"),
    ("ip", None, "10.0.0.256", "'10.0.0.256' is not an IPv4 or IPv6 address"),
    ("hash", None, "a" * 63, "a hex MD5, SHA-1, SHA-256 or SHA-512 hash is needed"),
    ("hash", None, "a" * 31, "a hex MD5, SHA-1, SHA-256 or SHA-512 hash is needed"),
    ("hash", None, "a" * 41, "a hex MD5, SHA-1, SHA-256 or SHA-512 hash is needed"),
    ("hash", None, "g" * 32, "a hex MD5, SHA-1, SHA-256 or SHA-512 hash is needed"),
    ("email", None, "dana@example", "'dana@example' is not an e-mail address"),
    ("domain", None, "-bad-.example", "'-bad-.example' is not a domain name"),
    ("cve", None, "CVE-25-1", "'CVE-25-1' is not a CVE id like CVE-2025-48927"),
])
def test_each_type_refuses_a_value_with_the_reason(kind, choices, raw, said):
    with pytest.raises(ValueError) as raised:
        parse(Variable(id="v", type=kind, choices=choices), raw)
    assert str(raised.value) == said


def test_a_list_without_choices_takes_anything_and_a_datetime_keeps_its_zone():
    assert parse(Variable(id="v", type="list"), "x,y") == ["x", "y"]
    seen = datetime(2026, 3, 29, 14, 2, tzinfo=zone("America/Los_Angeles"))
    assert parse(Variable(id="v", type="datetime"), seen) is seen
    assert parse(Variable(id="v", type="datetime"), "2026-03-29 14:02 America/Los_Angeles") == seen
    naive = datetime(2026, 3, 29, 14, 2)
    assert parse(Variable(id="v", type="datetime"), naive).tzinfo is not None  # read as text, given a zone


def test_stored_values_read_back_as_their_type():
    assert to_json(date(2026, 7, 22)) == "2026-07-22" and to_json(["a"]) == ["a"]
    assert to_json(datetime(2026, 3, 29, 21, 2, tzinfo=UTC)) == "2026-03-29T21:02:00+00:00"
    assert from_json(Variable(id="v", type="date"), "2026-07-22") == date(2026, 7, 22)
    assert from_json(Variable(id="v", type="datetime"), "2026-03-29T14:02:00-07:00[America/Los_Angeles]") == \
        datetime(2026, 3, 29, 14, 2, tzinfo=zone("America/Los_Angeles"))
    assert from_json(Variable(id="v", type="string"), "2026-07-22") == "2026-07-22"
    assert from_json(Variable(id="v", type="date"), None) is None


@pytest.mark.parametrize(("word", "said"), [
    ("PST", "PST is ambiguous: use America/Los_Angeles or -08:00"),
    ("EDT", "EDT is ambiguous: use America/New_York or -04:00"),
    ("CET", "CET is ambiguous: use Europe/Berlin or +01:00"),
    ("IST", "IST is ambiguous: use Asia/Kolkata or +05:30"),
    ("XYZ", "XYZ is not a time zone ir can read: use an IANA name such as Europe/Berlin, or an offset such as -08:00"),
])
def test_a_zone_abbreviation_is_refused_with_what_to_write(word, said):
    with pytest.raises(ValueError) as refused:
        parse_time(f"2026-03-29 14:02 {word}")
    assert str(refused.value) == said


@pytest.mark.parametrize(("ir_tz", "tz", "zone_", "source"), [
    ("Europe/Berlin", "America/New_York", "Europe/Berlin", "IR_TZ"),
    (None, "America/New_York", "America/New_York", "the system zone"),
    (None, ":Asia/Tokyo", "Asia/Tokyo", "the system zone"),
    (None, "Etc/UTC", "UTC", "the system zone"),
    (None, "EST5EDT,M3.2.0,M11.1.0", "UTC", "the system zone"),  # POSIX rules: no zone ir can name
])
def test_a_time_without_a_zone_is_read_in_ir_tz_else_the_system_zone(monkeypatch, ir_tz, tz, zone_, source):
    if ir_tz:
        monkeypatch.setenv("IR_TZ", ir_tz)
    monkeypatch.setenv("TZ", tz)
    found, said = assumed_zone()
    assert (zone_name(found), said) == (zone_, source)
    assert parse_time("2026-03-29 14:02").tzinfo == found


@pytest.mark.parametrize(("raw", "problem"), [(-1, "-1 is less than the minimum, 0"),
                                              ("13", "13 is more than the maximum, 12")])
def test_an_integer_is_checked_against_its_bounds(raw, problem):
    var = Variable(id="n", type="integer", min=0, max=12)
    assert parse(var, 12) == 12
    with pytest.raises(ValueError) as refused:
        parse(var, raw)
    assert str(refused.value) == problem


@given(st.integers(-10**6, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
@settings(max_examples=100, deadline=None)
def test_a_whole_number_within_its_bounds_edges_included_is_taken_and_one_past_them_refused(number, below, above):
    from ir.format.values import within

    low, high = number - below, number + above
    assert within(number, low, high) == number
    assert within(low, low, high) == low and within(low, low, None) == low  # the bounds themselves are taken
    assert within(high, low, high) == high and within(high, None, high) == high
    with pytest.raises(ValueError, match=f"^{low - 1} is less than the minimum, {low} \\(the hosts seen\\)$"):
        within(low - 1, low, high, low_from="the hosts seen")
    with pytest.raises(ValueError, match=f"^{high + 1} is more than the maximum, {high}$"):
        within(high + 1, low, high)
