"""What an include step's input template gives: the value itself when it is one expression, and a missing variable
named as rendering names it (not quietly None)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from ir.format.templates import Live, TemplateProblem, evaluate, references, render, syntax_error, value

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


# The filters and the checks `ir validate` makes of a template ------------------------------------------------------
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("template", "shown"), [
    ("{{ inputs.seen | add_hours(72) }}", "2026-03-30 12:00:00+02:00"),  # elapsed: the clocks went forward
    ("{{ inputs.seen | add_hours(-1.5) }}", "2026-03-27 09:30:00+01:00"),
    ("{{ inputs.seen | add_days(3) }}", "2026-03-30 11:00:00+02:00"),  # calendar days: the same wall-clock time
    ("{{ inputs.seen | add_days(-1) }}", "2026-03-26 11:00:00+01:00"),
    ("{{ inputs.seen | add_business_days(1) }}", "2026-03-30 11:00:00+02:00"),  # Friday + 1
    ("{{ inputs.seen | add_business_days(0) }}", "2026-03-27 11:00:00+01:00"),
    ("{{ inputs.seen | in_zone('America/Los_Angeles') }}", "2026-03-27 03:00:00-07:00"),
    ("{{ inputs.seen | in_zone('UTC') | timestamp }}", "2026-03-27 10:00 UTC (+00:00)"),
    ("{{ inputs.seen | timestamp }}", "2026-03-27 11:00 CET (+01:00)"),
    ("{{ '2026-03-29T14:02:00-07:00' | timestamp }}", "2026-03-29 14:02 UTC-07:00 (-07:00)"),
    ("{{ inputs.day | add_days(1) | timestamp }}", "2026-03-28 00:00 UTC (+00:00)"),  # a date: its midnight, UTC
    ("{{ inputs.none | default('the on-call') }}", "the on-call"),
    ("{{ inputs.nosuch | default('the on-call') }}", "the on-call"),
    ("{{ inputs.empty | default('x') }}|{{ inputs.empty | default('x', true) }}", "|x"),
    ("{{ inputs.none | d('y') }}", "y"),
    ("[{{ inputs.none }}]", "[]"),  # a value not given renders as nothing
    ("plain text", "plain text"),
])
def test_the_filters_and_defaults(template, shown):
    context = {"inputs": {"seen": datetime(2026, 3, 27, 11, tzinfo=BERLIN), "day": date(2026, 3, 27), "none": None,
                          "empty": ""}}
    assert render(template, context) == shown


@pytest.mark.parametrize(("template", "said"), [
    ("{{ 'soon' | add_hours(1) }}", "'soon' is not a date-time with a time zone"),
    ("{{ 5 | timestamp }}", "5 is not a date-time with a time zone"),
    ("{{ '2026-03-27T11:00' | add_days(1) }}", "'2026-03-27T11:00' is not a date-time with a time zone"),
    ("{{ inputs.seen | in_zone('Mars/Base') }}", "unknown time zone 'Mars/Base'"),
])
def test_a_filter_given_what_is_not_a_time_says_so(template, said):
    with pytest.raises(TemplateProblem) as raised:
        render(template, {"inputs": {"seen": datetime(2026, 3, 27, 11, tzinfo=BERLIN)}})
    assert str(raised.value).startswith(f"template {template!r} failed: {said}")


def test_a_template_past_its_output_limit_is_stopped():
    """(The 2-second limit uses SIGALRM, which pytest-timeout holds here: tests/test_limits.py checks it.)"""
    with pytest.raises(TemplateProblem) as raised:
        render("{% for i in range(60000) %}ab{% endfor %}", {})
    assert str(raised.value).startswith("template '{% for i in range(60000) %}ab{% endfor %}' renders more than "
                                        "100000 characters")
    assert len(render("{% for i in range(50000) %}ab{% endfor %}", {})) == 100000
    long = "{{ x }}" + "y" * 100
    with pytest.raises(TemplateProblem) as raised:
        render(long, {})
    assert str(raised.value).startswith(f"template {long[:77] + '...'!r} failed: ")


@pytest.mark.parametrize(("source", "expression", "error"), [
    ("{{ inputs.vendor | upper }}", False, None),
    ("{{ inputs.vendor | nosuch }}", False, "No filter named 'nosuch'."),
    ("{% if inputs.x is nosuch %}{% endif %}", False, "No test named 'nosuch'."),
    ("{{ inputs.vendor ", False, "unexpected end of template, expected 'end of print statement'."),
    ("inputs.hosts | length > 2", True, None),
    ("inputs.hosts |", True, "expected token 'name', got ')'"),
    ("{% for x in inputs.hosts %}{{ loop.nosuch() }}{% endfor %}", False, None),
    ("{% block a %}{% endblock %}{% block a %}{% endblock %}", False, "block 'a' defined twice"),
    ("{{ inputs.seen | in_zone(inputs.zone) }}", False, None),  # known only when it runs
])
def test_syntax_errors_are_found_before_anything_runs(source, expression, error):
    assert syntax_error(source, expression=expression) == error


def test_references_name_what_a_template_reads_and_not_what_it_sets():
    source = ("{{ inputs.vendor }} {{ answers['hosts'] }} {{ steps[name] }} {{ now }} {% set x = 1 %}{{ x }}"
              "{% for h in inputs.hosts %}{{ h.name }}{% endfor %}")
    assert sorted(references(source), key=str) == sorted(
        [("inputs", "vendor"), ("answers", "hosts"), ("steps", None), ("name", None), ("now", None),
         ("inputs", "hosts")], key=str)
    assert list(references("incident.id == 'x'", expression=True)) == [("incident", "id")]


def test_a_template_for_a_sink_escapes_its_values_but_not_its_own_text_or_a_live_value():
    def loud(value: object) -> str:
        return str(value).upper()

    context = {"inputs": {"who": "dana", "mention": Live("<@U1>")}}
    assert render("hi {{ inputs.who }} {{ inputs.mention }} {{ inputs.none }}", {**context, "inputs": {
        **context["inputs"], "none": None}}, loud) == "hi DANA <@U1> "
    assert render("{{ inputs.who }}", context) == "dana"


def test_a_when_on_a_missing_value_is_false_and_a_broken_one_is_named():
    assert evaluate("inputs.hosts | length > 1", CONTEXT) is True
    assert evaluate("inputs.nosuch", CONTEXT) is None
    with pytest.raises(TemplateProblem) as raised:
        evaluate("1 / 0", CONTEXT)
    assert str(raised.value) == ("condition '1 / 0' failed: division by zero\n"
                                 "  fix: use `is defined` or the `default` filter for values that may be missing")
    assert value("{{ inputs.nosuch | default(3) }}", CONTEXT) == 3
    with pytest.raises(TemplateProblem):
        value("{{ 1 / 0 }}", CONTEXT)


def test_the_power_limit_is_at_its_boundary():
    assert render("{{ (2 ** 200000) > 0 }} {{ 2 ** 0 }}", {}) == "True 1"  # 2 bits a step: 400000 bits, the limit
    with pytest.raises(TemplateProblem) as raised:
        render("{{ (2 ** 200001) > 0 }}", {})
    assert "2 ** 200001 is too large" in str(raised.value)


def test_a_long_template_is_shortened_in_a_message_past_80_characters():
    for length, shown in ((80, None), (81, 77)):
        source = "{{ x }}" + "y" * (length - 7)
        with pytest.raises(TemplateProblem) as raised:
            render(source, {})
        assert str(raised.value).startswith(f"template {source if shown is None else source[:shown] + '...'!r} "
                                            "failed: ")


def test_an_unknown_zone_is_found_in_a_filter_call_with_more_arguments():
    assert syntax_error("{{ inputs.seen | in_zone('Mars/Base', inputs.other) }}") == (
        "unknown time zone 'Mars/Base'; use an IANA name such as Europe/Berlin")


def test_a_render_leaves_a_timer_it_did_not_set_alone():
    """Under pytest-timeout's alarm (as under any caller's timer) a render does not take SIGALRM over."""
    import signal

    signal.setitimer(signal.ITIMER_REAL, 100)  # this test's own timeout, as pytest-timeout sets it
    try:
        assert render("{{ 1 + 1 }}", {}) == "2"
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


@pytest.mark.timeout(0)  # the render's own 2-second timer needs SIGALRM, which pytest-timeout holds otherwise
def test_a_render_past_two_seconds_is_stopped():
    import signal

    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    slow = "{% for i in inputs.many %}{% for j in inputs.many %}{{ '' }}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateProblem) as raised:
        render(slow, {"inputs": {"many": list(range(20000))}})  # 400 million steps: minutes without the timer
    assert str(raised.value) == (f"template {slow[:77] + '...'!r} took longer than 2 s to render\n"
                                 "  fix: remove the loops or the large arithmetic from it")
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # and the timer is gone


def test_the_range_budget_is_at_its_boundary():
    assert render("{% for i in range(60000) %}{% endfor %}{% for i in range(40000) %}{% endfor %}ok", {}) == "ok"
    with pytest.raises(TemplateProblem) as raised:
        render("{% for i in range(60000) %}{% endfor %}{% for i in range(40001) %}{% endfor %}", {})
    assert "loops over range() went past 100000 items in one template" in str(raised.value)
    assert render("{% for i in range(100000) %}{% endfor %}again", {}) == "again"  # each render has its own


def test_the_output_limit_is_at_its_boundary():
    assert len(render("{{ 'a' * 50000 }}{{ 'b' * 50000 }}", {})) == 100000
    with pytest.raises(TemplateProblem) as raised:
        render("{{ 'a' * 50000 }}{{ 'b' * 50001 }}", {})
    assert "renders more than 100000 characters" in str(raised.value)


def test_a_repetition_may_make_exactly_the_limit_and_a_newline_at_the_end_stays():
    assert render("{{ ('a' * 100000) | length }} {{ (['x'] * 100000) | length }}", {}) == "100000 100000"
    assert render("Contained {{ inputs.vendor }}\n", {"inputs": {"vendor": "3CX"}}) == "Contained 3CX\n"


@pytest.mark.timeout(0)  # with pytest-timeout's timer running, a render sets none anyway
def test_a_thread_other_than_the_main_one_renders_without_a_timer():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # SIGALRM is the main thread's: no timer, and no error for the lack of one
        assert pool.submit(render, "{{ 6 * 7 }}", {}).result() == "42"
