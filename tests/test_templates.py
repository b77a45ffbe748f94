"""What an include step's input template gives: the value itself when it is one expression, and a missing variable
named as rendering names it (not quietly None)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ir.format.templates import TemplateProblem, evaluate, render, syntax_error, value

CONTEXT = {"inputs": {"hosts": ["WS-1", "WS-2"], "seen": datetime(2026, 3, 27, 11, tzinfo=ZoneInfo("Europe/Berlin"))}}


def test_one_expression_gives_its_value_and_anything_else_its_text():
    assert value("{{ inputs.hosts }}", CONTEXT) == ["WS-1", "WS-2"]
    assert value(" {{- inputs.seen -}} ", CONTEXT) is CONTEXT["inputs"]["seen"]
    assert value("{{ inputs.hosts | length }} hosts", CONTEXT) == "2 hosts"
    assert value("{{ inputs.hosts[0] }} and {{ inputs.hosts[1] }}", CONTEXT) == "WS-1 and WS-2"


def test_a_missing_variable_is_named_not_passed_on_as_nothing():
    with pytest.raises(TemplateProblem) as raised:
        value("{{ inputs.nosuch }}", CONTEXT)
    assert str(raised.value) == ("template '{{ inputs.nosuch }}' failed: 'dict object' has no attribute 'nosuch'\n"
                                 "  fix: check the variable names against the template context in "
                                 "docs/playbook-format.md")
    assert evaluate("inputs.nosuch", CONTEXT) is None  # a `when` on a missing value is false, as before


def test_an_unknown_zone_is_a_template_problem_and_a_validation_error():
    """A misspelt zone in `in_zone` is found by `ir validate` when it is written out, and is a template problem
    (exit 1, naming the template) when it comes from a value, not an internal error."""
    assert syntax_error("{{ inputs.seen | in_zone('Europe/Berln') }}") == (
        "unknown time zone 'Europe/Berln'; use an IANA name such as Europe/Berlin")
    assert syntax_error("{{ inputs.seen | in_zone('Europe/Berlin') }}") is None
    with pytest.raises(TemplateProblem) as raised:
        render("{{ inputs.seen | in_zone(inputs.zone) }}", {"inputs": {**CONTEXT["inputs"], "zone": "Mars/Base"}})
    assert "unknown time zone 'Mars/Base'" in str(raised.value)
