"""Times as responders and answers files give them: every written form, RFC 9557's included, and the mistakes;
and durations as ir shows them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ir.format.values import to_json
from ir.times import duration, parse_duration, parse_time


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
