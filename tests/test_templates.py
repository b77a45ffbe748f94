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


# The classic escapes from a Jinja template to Python (issue 14): each is refused as a sandbox violation, by every
# way ir renders a playbook's text (a template, a template for a sink, an include's value); a `when` gets nothing
# out of them (an unsafe attribute is undefined there: false). A plain jinja2.Environment renders every one.
ESCAPES = [
    "''.__class__.__mro__[1].__subclasses__()",
    "(1).__class__.__base__.__subclasses__()",
    "cycler.__init__.__globals__.os",
    "joiner.__init__.__globals__",
    "namespace.__init__.__globals__",
    "lipsum.__globals__['os']",
    "inputs.__class__",
    "range(3) | attr('__class__')",
    "'{0.__class__}'.format(1)",
    "'{a.__class__}'.format_map({'a': 1})",
    "inputs.update({'x': 1})",
    "inputs.pop('hosts')",
    "inputs.hosts.append('WS-3')",
]


@pytest.mark.parametrize("escape", ESCAPES)
def test_the_classic_escapes_are_refused_everywhere_a_template_runs(escape):
    context = {"inputs": {"hosts": ["WS-1", "WS-2"]}}
    for run in (lambda: render("{{ " + escape + " }}", context), lambda: render("{{ " + escape + " }}", context, str),
                lambda: value("{{ " + escape + " }}", context)):
        with pytest.raises(TemplateProblem) as raised:
            run()
        assert "is unsafe" in str(raised.value), str(raised.value)
    try:
        assert evaluate(escape, context) is None
    except TemplateProblem as exc:
        assert "is unsafe" in str(exc), str(exc)
    assert context == {"inputs": {"hosts": ["WS-1", "WS-2"]}}  # nothing changed


def test_self_and_its_private_context_are_out_of_reach():
    with pytest.raises(TemplateProblem) as raised:
        render("{{ self._TemplateReference__context }}", {})
    assert "access to attribute '_TemplateReference__context' of 'TemplateReference' object is unsafe" \
        in str(raised.value)


def test_sizes_are_bounded_by_the_sandbox():
    for template, said in [("{{ 'a' * 1000000 }}", "the result would have more than 100000 items"),
                           ("{{ 10 ** 1000000 }}", "10 ** 1000000 is too large"),
                           ("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
                            "loops over range() went past 100000 items in one template")]:
        with pytest.raises(TemplateProblem) as raised:
            render(template, {})
        assert said in str(raised.value)
    assert render("{{ 'ab' * 3 }} {{ 2 ** 10 }} {{ range(3) | list }}", {}) == "ababab 1024 [0, 1, 2]"
