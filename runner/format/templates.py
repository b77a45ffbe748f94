"""Jinja2 templates in playbooks: rendered in a sandbox with StrictUndefined, because playbooks come from
other people's repositories.

The template context (documented in docs/playbook-format.md):
  inputs    the playbook's inputs            inputs.vendor
  answers   answers to prompt questions      answers.affected_hosts
  steps     per step: status, decision, label, note, completed_at   steps.scope.decision
  incident  id, title, severity, status, exercise, opened_at, channel, ticket, commander
  roles     who holds each role              roles.commander
  playbook  id, title, version
  now       the current time (aware, UTC)

A value that was not given (an optional input left empty, a role nobody holds) is None: it renders as nothing, and
`default(...)` stands in for it as for an undefined one.

Filters besides Jinja's own: add_hours(n) (elapsed hours), add_days(n) (calendar days), add_business_days(n)
(Monday to Friday), in_zone("Europe/Berlin"), timestamp (2026-03-29 14:02 PDT (-07:00)).
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import do_default
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ir.errors import IrError
from ir.times import aware, zone

CONTEXT_NAMES = frozenset({"inputs", "answers", "steps", "incident", "roles", "playbook", "now"})
INCIDENT_FIELDS = frozenset(
    {"id", "title", "severity", "status", "exercise", "opened_at", "channel", "ticket", "commander"}
)
STEP_FIELDS = frozenset({"status", "decision", "label", "note", "completed_at"})
PLAYBOOK_FIELDS = frozenset({"id", "title", "version"})



def _aware(value: Any) -> datetime:
    """A date-time with its zone: a datetime, ISO 8601 text, or a date (its midnight, UTC)."""
    if isinstance(value, (str, date)):
        try:
            return aware(value)
        except ValueError:
            pass
    raise TemplateError(f"{value!r} is not a date-time with a time zone")


def add_hours(value: Any, hours: float) -> datetime:
    """Elapsed hours (72 hours after Friday 11:00 CET is Monday 12:00 CEST when the clocks go forward)."""
    moment = _aware(value)
    return (moment.astimezone(UTC) + timedelta(hours=hours)).astimezone(moment.tzinfo)


def add_days(value: Any, days: float) -> datetime:
    """Calendar days: the same wall-clock time in the value's zone, `days` later."""
    return _aware(value) + timedelta(days=days)


def add_business_days(value: Any, days: int) -> datetime:
    """Monday to Friday; public holidays are not known to ir."""
    out = _aware(value)
    while days > 0:
        out += timedelta(days=1)
        days -= out.weekday() < 5
    return out


def in_zone(value: Any, name: str) -> datetime:
    try:
        where = zone(name)
    except ValueError as exc:  # an unknown zone is the template's problem, said at its step
        raise TemplateError(str(exc)) from None
    return _aware(value).astimezone(where)


def timestamp(value: Any) -> str:
    """A date-time as people read it in a report: 2026-03-29 14:02 PDT (-07:00)."""
    moment = _aware(value)
    offset = f"{moment:%z}"
    return f"{moment:%Y-%m-%d %H:%M} {moment.tzname()} ({offset[:3]}:{offset[3:]})"


def default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's `default`, which also stands in for a value that was not given (an optional input left empty, a
    role nobody holds): those are None in the context."""
    return default_value if value is None else do_default(value, default_value, boolean)


FILTERS = {"add_hours": add_hours, "add_days": add_days, "add_business_days": add_business_days,
           "in_zone": in_zone, "timestamp": timestamp}
MAX_OUTPUT = 100_000  # characters a template may render (a note, a message, a ticket's description)
MAX_VALUE = 100_000  # items or characters one `*`, `**` or range may make, and range items in all of one render
MAX_SECONDS = 2.0  # of one render, where a timer can stop it (the main thread)


class _Limited(ImmutableSandboxedEnvironment):
    """The sandbox, with limits on what one operation may build: `'a' * 10**9` or `10**(10**8)` is an error,
    not a gigabyte or a minute."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            sized, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(sized, (str, list, tuple)) and isinstance(times, int) and len(sized) * times > MAX_VALUE:
                raise SecurityError(f"the result would have more than {MAX_VALUE} items")
            return left * right
        if isinstance(left, int) and isinstance(right, int) and right > 0 and \
                right * max(abs(left), 2).bit_length() > MAX_VALUE * 4:
            raise SecurityError(f"{left} ** {right} is too large")
        return left ** right


_budget: ContextVar[list[int]] = ContextVar("range_budget")


def _range(*args: int) -> range:
    """range(), with at most MAX_VALUE items in all of one render (nested loops multiply)."""
    made = range(*args)
    left = _budget.get([MAX_VALUE])
    left[0] -= len(made)
    if left[0] < 0:
        raise SecurityError(f"loops over range() went past {MAX_VALUE} items in one template")
    return made


# A value that was not given renders as nothing, not as "None".
_env = _Limited(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True,
                finalize=lambda value: "" if value is None else value)
_env.globals["range"] = _range
_env.filters.update(FILTERS, default=default, d=default)
GLOBALS = frozenset(_env.globals)


class Live(str):
    """A value put in the context on purpose to be live in an integration's text (a role holder's mention): not
    escaped for the sink, unlike every other value, which may come from an attacker's log line."""


@lru_cache(maxsize=8)
def _sink_env(escape: Callable[[object], str]) -> ImmutableSandboxedEnvironment:
    """The environment whose `{{ ... }}` output is escaped for one sink (Slack, Jira); the template's own text
    (what the playbook's author wrote) is not."""
    env = _env.overlay(finalize=lambda value: "" if value is None else value if isinstance(value, Live)
                       else escape(value))
    assert isinstance(env, ImmutableSandboxedEnvironment)
    return env


@lru_cache(maxsize=2048)
def _compiled_for(source: str, escape: Callable[[object], str]) -> Any:
    return _sink_env(escape).from_string(source)


class TemplateProblem(IrError):
    """A template that does not parse or cannot be rendered."""


@lru_cache(maxsize=2048)
def _nodes(source: str) -> tuple[nodes.Node, ...]:
    """Every node of a parsed template, in document order (walked once, read by the checks and `references`)."""
    return tuple(_env.parse(source).find_all(nodes.Node))


# What Jinja's compiler checks beyond the parser, besides filter and test names: blocks, extends, macros and
# for-loop targets. Playbook templates rarely hold them, so only those templates are compiled to check them.
_COMPILER_CHECKED = (nodes.Block, nodes.Extends, nodes.Macro, nodes.CallBlock, nodes.For)


def syntax_error(source: str, *, expression: bool = False) -> str | None:
    """The syntax error of a template (or of a `when` expression), or None when it is valid: it parses and
    names only filters and tests that exist (anywhere, even in a branch that may not run)."""
    try:
        found = _nodes(_as_template(source, expression))
        for node in found:
            if isinstance(node, (nodes.Filter, nodes.Test)):
                known = _env.filters if isinstance(node, nodes.Filter) else _env.tests
                if node.name not in known:
                    kind = "filter" if isinstance(node, nodes.Filter) else "test"
                    return f"No {kind} named {node.name!r}."  # Jinja's compiler's words
            if (isinstance(node, nodes.Filter) and node.name == "in_zone" and node.args
                    and isinstance(node.args[0], nodes.Const) and isinstance(node.args[0].value, str)):
                try:
                    zone(node.args[0].value)
                except ValueError as exc:
                    return str(exc)
        if any(isinstance(node, _COMPILER_CHECKED) for node in found):
            _compiled(source, expression)
    except TemplateError as exc:
        return str(exc)
    return None


def _as_template(source: str, expression: bool) -> str:
    return "{{ (" + source + ") }}" if expression else source


@lru_cache(maxsize=2048)
def _compiled(source: str, expression: bool) -> Any:
    """A compiled template, or expression; an expression's undefined value is returned as it is (StrictUndefined),
    not turned into None, so each caller decides what a missing value means."""
    return _env.compile_expression(source, undefined_to_none=False) if expression else _env.from_string(source)


def render(source: str, context: dict[str, Any], escape: Callable[[object], str] | None = None) -> str:
    """Render a template string; a missing variable or a sandbox violation is a `TemplateProblem`. With `escape`
    (ir.sinks.slack, ir.sinks.jira), every value the template puts in is escaped for that sink."""
    if "{" not in source:
        return source
    template = _compiled(source, False) if escape is None else _compiled_for(source, escape)
    out: list[str] = []
    size = 0
    token = _budget.set([MAX_VALUE])
    try:
        with _time_limit(source):
            for chunk in template.generate(context):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise TemplateProblem(f"template {_short(source)} renders more than {MAX_OUTPUT} characters",
                                          hint="shorten what it puts in (a long input or answer, a loop)")
                out.append(chunk)
    except _FAILURES as exc:
        raise _failed(source, exc) from None
    finally:
        _budget.reset(token)
    return "".join(out)


# What a template can raise besides Jinja's own errors: 1/0, a range past the sandbox's, a bad format_map.
_FAILURES = (TemplateError, ArithmeticError, LookupError, TypeError, ValueError, RecursionError)


def _short(source: str) -> str:
    return repr(source if len(source) <= 80 else source[:77] + "...")


@contextmanager
def _time_limit(source: str) -> Iterator[None]:
    """Stop a render after MAX_SECONDS with a TemplateProblem, where a timer can (the main thread, Unix)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer") or \
            signal.getitimer(signal.ITIMER_REAL)[0]:
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise TemplateProblem(f"template {_short(source)} took longer than {MAX_SECONDS:g} s to render",
                              hint="remove the loops or the large arithmetic from it")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, MAX_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_WHOLE = re.compile(r"\{\{-?\s*((?:(?!\}\}).)+?)\s*-?\}\}", re.S)  # `{{ answers.hosts }}` and nothing else


def value(source: str, context: dict[str, Any]) -> Any:
    """What a template gives an include step's input: when it is one expression (`{{ answers.hosts }}`), the
    expression's own value (a list stays a list, a time keeps its zone); otherwise its rendered text."""
    whole = _WHOLE.fullmatch(source.strip())
    if whole is None:
        return render(source, context)
    try:
        result = _compiled(whole.group(1), True)(**context)
    except _FAILURES as exc:
        raise _failed(source, exc) from None
    return render(source, context) if isinstance(result, Undefined) else result  # rendering says what is missing


def _failed(source: str, exc: Exception) -> TemplateProblem:
    return TemplateProblem(f"template {_short(source)} failed: {exc}",
                           hint="check the variable names against the template context in docs/playbook-format.md")


def evaluate(expression: str, context: dict[str, Any]) -> Any:
    """Evaluate a `when` expression (an undefined value is None: false)."""
    try:
        result = _compiled(expression, True)(**context)
        return None if isinstance(result, Undefined) else result
    except _FAILURES as exc:
        raise TemplateProblem(f"condition {expression!r} failed: {exc}",
                              hint="use `is defined` or the `default` filter for values that may be missing") from None


def references(source: str, *, expression: bool = False) -> Iterator[tuple[str, str | None]]:
    """Every variable a template reads, as (top-level name, attribute or None): `inputs.vendor` ->
    ("inputs", "vendor"). Names the template sets itself (loop variables, `set`) are not reported."""
    found = _nodes(_as_template(source, expression))
    names = [n for n in found if isinstance(n, nodes.Name)]
    local = {n.name for n in names if n.ctx in ("store", "param")}
    seen_names: set[int] = set()
    for node in found:
        if not isinstance(node, (nodes.Getattr, nodes.Getitem)):
            continue
        base = node.node
        if isinstance(base, nodes.Name) and base.name not in local:
            seen_names.add(id(base))
            if isinstance(node, nodes.Getattr):
                yield base.name, node.attr
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                yield base.name, node.arg.value
            else:
                yield base.name, None
    for name in names:
        if name.ctx == "load" and name.name not in local and id(name) not in seen_names:
            yield name.name, None
