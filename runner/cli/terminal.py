"""The person at the terminal: Markdown instructions, checklists ticked item by item, typed questions,
decisions, and the step menu (complete, skip, failed, note, evidence, overview, pause).

End of input or Ctrl-C at any prompt pauses the run: everything answered so far is already in the store.
"""

from __future__ import annotations

import math
import os
import re
import select
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from ir.errors import IrError
from ir.format.model import DecisionStep, ManualStep, Variable
from ir.run import evidence
from ir.run.responder import DoneElsewhere, Outcome, PauseRequested, Place, Session
from ir.sinks import terminal
from ir.times import assumed_zone, parse_time, when, zone_given, zone_name


def _shown(text: object) -> str:
    """Untrusted text in rich markup: control characters visible, markup escaped."""
    return escape(terminal(text))


MENU = "[c]omplete (+ note) [s]kip [f]ailed [n]ote [e]vidence [o]verview [u] correct [p]ause"
# also `d`: completed earlier than now (asks when); left out of the line, which has to fit a facilitator's keys too
_CHECK_ANSWERS = {"": True, "y": True, "yes": True, "n": False, "no": False, "a": True, "all": True}
SEND_DELAY = 3.0  # seconds a notify or ticket step waits for `s` or `h` before it goes (IR_SEND_DELAY)
MAX_SEND_DELAY = 600.0


def send_delay() -> float:
    """IR_SEND_DELAY, the pause before a notify or ticket step goes on, in seconds (SEND_DELAY when unset)."""
    raw = os.environ.get("IR_SEND_DELAY", "").strip()
    try:
        delay = float(raw) if raw else SEND_DELAY
    except ValueError:
        delay = math.nan
    if not 0 <= delay <= MAX_SEND_DELAY:  # nan and inf too
        raise IrError(f"IR_SEND_DELAY={raw!r} is not a pause in seconds",
                      hint=f"set it to seconds from 0 (no pause) to {MAX_SEND_DELAY:g}, or unset it for "
                           f"{SEND_DELAY:g}")
    return delay


_MARKS = re.compile(r"\*\*|__|`")


def _kind(var: Variable) -> str:
    """The type as the question shows it, with its form or bounds."""
    if var.type == "date":
        return "date, YYYY-MM-DD"
    bounds = [f"at least {var.min}" if isinstance(var.min, int) else "",
              f"at most {var.max}" if isinstance(var.max, int) else ""]
    return ", ".join([var.type, *(b for b in bounds if b)])


def _listed(value: Any) -> str:
    """A default or example as typed: a list's items separated by commas."""
    return ", ".join(terminal(v) for v in value) if isinstance(value, list) else terminal(value)


def _plain(text: str) -> str:
    """A one-line label without Markdown's emphasis and code marks."""
    return _MARKS.sub("", text)


def _picked(var: Variable, answer: str) -> Any:
    """A choice answer's numbers and names as the choices themselves (`1 3`, `1,3`, `high`, `Low, high`); what is
    none of them is returned as typed, for the engine to refuse."""
    choices = var.choices or []
    if answer in choices:
        return [answer] if var.type == "multi-choice" else answer
    by_name = {c.lower(): c for c in choices}
    parts = [p for p in re.split(r"[,\s]+" if "," not in answer else r"\s*,\s*", answer.strip()) if p]
    picked = [choices[int(p) - 1] if p.isdigit() and 0 < int(p) <= len(choices) else by_name.get(p.lower(), p)
              for p in parts]
    if var.type == "multi-choice":
        return picked
    return picked[0] if len(picked) == 1 else answer


def _failing(place: Place, incident_id: str) -> str:
    """What marking the step failed does next."""
    on_failure = place.step.on_failure
    if on_failure == "stop":
        return f"Marking it failed stops the run here (exit 4); `ir resume {incident_id}` runs this step again."
    if on_failure == "continue":
        return "Marking it failed records it and goes on with the next step."
    return f"Marking it failed records it and goes on at step {on_failure}."


class Terminal:
    """`extras` adds actions to the step menu: a letter -> (label, action); an action may end the step by
    returning an Outcome (a tabletop facilitator's jump)."""

    def __init__(self, console: Console | None = None,
                 extras: dict[str, tuple[str, Callable[[Session], Outcome | None]]] | None = None):
        self.console = console or Console(highlight=False)
        self.extras = extras or {}
        # Asked about once a second while a prompt of a step waits at a terminal: who did the step at that path
        # from elsewhere (`ir step` on another machine), or None. Set by the front end that knows the store.
        self.watch: Callable[[str], str | None] | None = None
        self._at: str | None = None  # the path of the step whose heading was shown last; None while opening
        self._typed = b""  # read from the terminal past the line being answered
        self._roles: dict[str, str | None] = {}  # role -> holder given in the table of roles, not recorded yet
        self._announced: set[str] = set()  # the steps said to be overdue (said once each)
        self._send_delay = send_delay()

    # reading ------------------------------------------------------------------------------------------
    def read(self, prompt: str) -> str:
        try:
            if sys.stdin.isatty():
                self.console.print(f"{prompt} ", end="", markup=False)
                self.console.file.flush()
                line = self._line_within(None)
                assert line is not None
                return line.strip()
            return self.console.input(f"{prompt} ", markup=False).strip()
        except (EOFError, KeyboardInterrupt):
            self.console.print()
            raise PauseRequested from None

    def _line_within(self, seconds: float | None) -> str | None:
        """The next line typed at the terminal, or None when `seconds` pass first (None: no limit). While it waits,
        it asks `watch` once a second whether the step at hand was done elsewhere meanwhile (then `DoneElsewhere`);
        not while the incident is being opened, before the first step's heading. Read
        from the file descriptor itself, every prompt alike: a line Python had buffered would be invisible to the
        wait."""
        fd = sys.stdin.fileno()
        deadline = None if seconds is None else time.monotonic() + seconds
        while b"\n" not in self._typed:
            wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if wait <= 0:
                return None
            if not select.select([fd], [], [], wait)[0]:
                by = self.watch(self._at) if self.watch is not None and self._at is not None else None
                if by:
                    self.console.print()
                    raise DoneElsewhere(by)
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError
            self._typed += chunk
        line, _, self._typed = self._typed.partition(b"\n")
        return line.decode(errors="replace")

    def read_required(self, prompt: str) -> str:
        while not (answer := self.read(prompt)):
            self.console.print("  [red]a reply is needed[/]")
        return answer

    # the Responder protocol -----------------------------------------------------------------------------
    def value(self, var: Variable, key: str, problem: str | None) -> Any:
        if key.startswith("roles.") and var.id in self._roles and not problem:
            return self._roles.pop(var.id)
        if problem:
            self.console.print(f"  [red]{_shown(problem)}[/]")
        label = var.label or var.id
        self.console.print(f"[bold]{_shown(label)}[/] [dim]({_kind(var)}{'' if var.required else ', optional'})[/]")
        if var.help:
            self.console.print(f"  [dim]{_shown(var.help)}[/]")
        if var.choices:
            for number, choice in enumerate(var.choices, 1):
                self.console.print(f"  {number}. {_shown(choice)}")
            if var.type == "multi-choice":
                self.console.print("  [dim]several: numbers or names, e.g. 1 3 or 1,3[/]")
        if var.type == "text":
            self.console.print("  [dim]several lines: an empty line ends the text[/]")
        hints = [f"default: {_listed(var.default)}"] if var.default is not None else []
        offered = var.example if var.required and var.default is None else None  # Enter takes the example
        hints += [f"Enter: {_listed(offered)}"] if offered is not None else []
        hints += [f"e.g. {_listed(var.example)}"] if var.example is not None and var.default is None \
            and offered is None else []
        prompt = f"  > {'[' + '; '.join(hints) + '] ' if hints else ''}"
        while True:
            answer = self.read(prompt)
            if not answer:
                return var.default if offered is None else offered
            if var.type == "text":
                return "\n".join([answer, *iter(lambda: self.read("  >"), "")])
            if var.type == "datetime":
                when = self._time(answer)
                if when is None:
                    continue
                return when
            if var.choices:
                return _picked(var, answer)
            return answer

    def roles(self, asked: list[Variable]) -> None:
        """The roles not recorded yet, in one table: `number=name`, several on a line with `;`; Enter ends it and
        leaves the rest open. What is given here is recorded as each role's answer, in the table's order."""
        if len(asked) < 2:
            return
        self.console.print("[bold]Roles[/] [dim](who holds each; Enter: done, the rest left open)[/]")
        for number, var in enumerate(asked, 1):
            self.console.print(f"  {number}. {_shown((var.label or var.id).partition(': who?')[0])}")
        given: dict[str, str] = {}
        while answer := self.read("  roles: number=name, several with ; (e.g. 1=Dana Reyes; 2=Lee Park) >"):
            found, bad = {}, []
            for part in (p.strip() for p in answer.split(";") if p.strip()):
                row, _, who = part.partition("=")
                if not (row.strip().isdigit() and 0 < int(row) <= len(asked) and who.strip()):
                    bad.append(part)
                    continue
                found[asked[int(row) - 1].id] = who.strip()
            if bad:
                self.console.print(f"  [red]{_shown(', '.join(bad))}: not number=name, with a number of the table "
                                   f"(1-{len(asked)}); nothing of this line was taken[/]")
                continue
            given |= found
            for number, var in enumerate(asked, 1):
                if var.id in found:
                    self.console.print(f"  {number}. {_shown((var.label or var.id).partition(': who?')[0])} = "
                                       f"{_shown(found[var.id])}")
        self._roles = {var.id: given.get(var.id) for var in asked}

    def _time(self, answer: str) -> datetime | None:
        """A time as typed, saying the zone it was read in when none was given; None (said why) if it is not one."""
        try:
            found = parse_time(answer)
        except ValueError as exc:
            self.console.print(f"  [red]{_shown(str(exc))}[/]")
            return None
        if not zone_given(answer):
            tz, source = assumed_zone()
            where = zone_name(tz) if source == "UTC" else f"{zone_name(tz)} ({source})"
            self.console.print(f"  [dim]no zone given: read in {_shown(where)} as {_shown(when(found, tz))}[/]")
        return found

    def decide(self, place: Place, question: str, session: Session) -> tuple[str, str | None]:
        step = place.step
        assert isinstance(step, DecisionStep)
        while True:
            self.console.print(Markdown(terminal(question, one_line=False), hyperlinks=False, style="bold"))
            for number, choice in enumerate(step.choices, 1):
                mark = " [dim](default)[/]" if choice.id == step.default else ""
                self.console.print(f"  {number}. {_shown(_plain(choice.label))}{mark}")
                if choice.description:
                    self.console.print(Padding(Markdown(terminal(choice.description, one_line=False),
                                                        hyperlinks=False, style="dim"), (0, 0, 0, 5)))
            answer = self.read("  choice number (and why, optional: 2 no EDR there), or [n]ote [e]vidence "
                               "[o]verview [u] correct [p]ause >")
            whole = self._choice(step, answer)
            first, _, why = answer.partition(" ")
            picked = whole or (self._choice(step, first) if first and why.strip() else None)
            if picked:
                return picked, None if whole else why.strip()
            if not self._menu_action(answer, session):
                self.console.print("  [red]pick one of the numbers[/]")

    @staticmethod
    def _choice(step: DecisionStep, answer: str) -> str | None:
        if not answer:
            return step.default
        ids = [c.id for c in step.choices]
        if answer.isdigit() and 0 < int(answer) <= len(ids):
            return ids[int(answer) - 1]
        return answer if answer in ids else None

    def act(self, place: Place, text: str, checklist: list[str], session: Session) -> Outcome:
        if isinstance(place.step, ManualStep):
            self.console.print(Markdown(terminal(text, one_line=False), hyperlinks=False))
            for item in place.step.evidence:
                self.console.print(f"  [cyan]evidence to capture:[/] {_shown(item.description)} [dim]({item.id})[/]")
        else:
            self.console.print(f"  [cyan]{_shown(text)}[/]")
            if (held := self._go_on(session)) is not None:
                return held
        self._checklist(place, checklist, session)
        menu = "  ".join([MENU, *(label for label, _ in self.extras.values())])
        while True:
            self._announce(session)
            typed = self.read(f"{menu} >")
            first, _, said = typed.partition(" ")
            answer = first.lower() if first.lower() in ("c", "d") and said.strip() else typed.lower()
            if answer in self.extras:
                ended = self.extras[answer][1](session)
                if ended is not None:
                    return ended
                continue
            if answer in ("", "c", "d"):  # d: completed, and it happened earlier than now
                if len(session.checked()) < len(checklist):  # the items left open are asked again first
                    self._checklist(place, checklist, session, again=True)
                open_items = len(checklist) - len(session.checked())
                if open_items and self.read(f"  {open_items} checklist item(s) not ticked; complete anyway? [y/N] >"
                                            ).lower() not in ("y", "yes"):
                    continue
                if not self._evidence_asked(place, session):
                    continue
                at = self._when(f"  {place.step.milestone or 'done'}: when did this happen?") \
                    if place.step.milestone or answer == "d" else None
                return Outcome("completed", said.strip() or None, at)
            if answer == "s":
                return Outcome("skipped", self.read_required("  why skip it? >"))
            if answer == "f":
                if self.read(f"  {_failing(place, session.incident_id)} Mark it failed? [y/N] >"
                             ).lower() not in ("y", "yes"):
                    self.console.print("  [dim]not marked failed[/]")
                    continue
                return Outcome("failed", self.read_required("  what failed? >"))
            if not self._menu_action(answer, session):
                self.console.print(f"  [red]unknown choice {answer!r}[/]")

    def _announce(self, session: Session) -> None:
        """Steps past their SLA, said once each, as the responder comes back to a step's menu."""
        new = []
        for late in session.run.overdue():
            said = late.partition(" (")[0] if "SLA" in late else late
            if said not in self._announced:
                self._announced.add(said)
                new.append(f"{'overdue: ' if 'SLA' in late else ''}{late}")
                self.console.print(f"  [red]{_shown(new[-1])}[/]")
        if new:
            session.run.remind(new)

    def _go_on(self, session: Session) -> Outcome | None:
        """A notify or ticket step goes on by itself after a short pause (IR_SEND_DELAY seconds, 3 by default):
        Enter (or `c`) goes now, `s` skips it, `h` holds it at the step menu, and so does any other key, said so
        (a key typed by mistake does not send). None: held. Input that is not a terminal does not wait."""
        delay = self._send_delay
        prompt = f"  goes in {delay:g} s: Enter now, [s]kip, [h]old >"
        if delay <= 0 or not sys.stdin.isatty():
            return Outcome("completed")
        self.console.print(prompt + " ", end="", markup=False)
        self.console.file.flush()
        try:
            line = self._line_within(delay)
        except (EOFError, KeyboardInterrupt):
            self.console.print()
            raise PauseRequested from None
        answer = (line or "").strip().lower()
        if line is None:  # the pause ran out: it goes
            self.console.print()
        if answer == "s":
            return Outcome("skipped", self.read_required("  why skip it? >"))
        if answer == "h":
            self.console.print("  [dim]held: c sends it, s skips it[/]")
            return None
        if answer == "p":
            raise PauseRequested
        if answer not in ("", "c"):  # a key typed by mistake does not send it
            self.console.print(f"  [red]{_shown(repr(answer))} is not an answer here;[/] held: c sends it, s skips it")
            return None
        return Outcome("completed")

    def _checklist(self, place: Place, checklist: list[str], session: Session, again: bool = False) -> None:
        every = False
        for number, item in enumerate(checklist):
            if number in session.checked():
                if not again:
                    self.console.print(f"  [green]✓[/] {_shown(item)}")
                continue
            left = sum(1 for n in range(number, len(checklist)) if n not in session.checked())
            options = "[Y/n; a: all done]" if left > 1 else "[Y/n]"
            while not every and (answer := self.read(f"  ☐ {terminal(item)}  done? {options} >").lower()
                                 ) not in _CHECK_ANSWERS:
                if answer == "p":
                    raise PauseRequested
                self.console.print(f"    [red]'{_shown(answer)}' is not an answer here:[/] y or Enter: done; "
                                   "n: not yet (asked again when you complete the step); "
                                   f"{'a: this one and the rest done; ' if left > 1 else ''}p: pause")
            if every:
                self.console.print(f"  [green]✓[/] {_shown(item)}")
                answer = "y"
            every = every or answer in ("a", "all")
            if _CHECK_ANSWERS[answer]:
                session.tick(number, item)
            elif not again:
                self.console.print("    [dim]left open: asked again when you complete the step[/]")

    def _evidence_asked(self, place: Place, session: Session) -> bool:
        """Each evidence item of a manual step not recorded yet is asked for: recorded now, or said why not.
        False when the responder goes back to the step."""
        step = place.step
        for item in step.evidence if isinstance(step, ManualStep) else []:
            if session.evidence_done(item.id):
                continue
            self.console.print(f"  [cyan]evidence not recorded yet:[/] {_shown(item.description)} [dim]({item.id})[/]")
            while (answer := self.read("  [r]ecord it now, [n]ot captured (say why, or n and why), or [b]ack to the "
                                       "step >")).lower().partition(" ")[0] not in ("r", "n", "b"):
                self.console.print("    [red]answer r, n or b[/]")
            key, _, why = answer.partition(" ")
            if key.lower() == "b" or key.lower() == "r" and not self._evidence(session, item.id):
                return False
            if key.lower() == "n":
                session.evidence_missing(item.id, why.strip() or self.read_required("  why is it not captured? >"))
        return True

    def _menu_action(self, answer: str, session: Session) -> bool:
        """The actions offered at every prompt of a step; False when `answer` is none of them."""
        if answer == "p":
            raise PauseRequested
        if answer == "n":
            text = self.read_required("  note >")
            session.note(text, self._when())
        elif answer == "e":
            self._evidence(session)
        elif answer == "o":
            self.overview(session)
        elif answer == "u":
            self._correct(session)
        else:
            return False
        return True

    def _correct(self, session: Session) -> None:
        """`u`: an earlier answer, input or role corrected; a refusal is said and changes nothing."""
        name = self.read("  correct which? (inputs.ID, roles.ID or STEP.QUESTION; Enter: none) >")
        if not name:
            return
        value = self.read_required("  the right value >")
        reason = self.read_required("  why? >")
        try:
            said = session.correct(name, value, reason)
        except IrError as exc:
            self.console.print(f"  [red]{_shown(exc.message)}; nothing changed[/]")
            return
        self.console.print(f"  corrected: {_shown(said)}")

    def _when(self, question: str = "  when did it happen?") -> Any:
        while True:
            answer = self.read(f"{question} [Enter: now; or e.g. 2026-03-29 14:02 America/Los_Angeles] >")
            if not answer:
                return None
            if (found := self._time(answer)) is not None:
                return found

    def _evidence(self, session: Session, item: str | None = None) -> bool:
        """Evidence recorded at the step (`item`: the step's evidence item it is); False when its file fails."""
        path = self.read("  file (Enter: none, describe it only) >")
        record: dict[str, Any] = {}
        if path:
            copy = self.read("  keep a private copy in the incident store? [y/N] >").lower() in ("y", "yes")
            try:
                record = evidence.custody_record(Path(path), session.incident_id, copy=copy)
            except IrError as exc:  # a missing or unreadable file: say so and stay at the step
                self.console.print(f"  [red]{_shown(str(exc))}[/]")
                return False
            self.console.print(f"  sha256 {record['sha256']}  {record['size']} bytes")
        session.evidence(self.read_required("  what is it? >"), record, item)
        return True

    def overview(self, session: Session) -> None:
        table = Table("phase", "done", "steps", title=f"{session.incident_id}: now at {session.place.path}")
        for phase, done, total in session.overview():
            table.add_row(phase, str(done), str(total))
        self.console.print(table)
        run = session.run
        finished = run.done_steps()
        self.console.print(terminal(f"done: {len(finished)} step(s)" + (
            f", the last: {', '.join(finished[-3:])}" if finished else "")), markup=False)
        self.console.print(terminal(f"next: {', '.join(run.upcoming()) or 'the end of the playbook'}"), markup=False)
        for late in run.overdue():
            self.console.print(f"[red]overdue:[/] {_shown(late)}")

    def heading(self, place: Place, title: str, position: str) -> None:
        self._at = place.path
        step = place.step
        extra = " · ".join(x for x in (f"role: {step.role}" if step.role else "",
                                       f"SLA {step.sla}" if step.sla else "") if x)
        more = f" · {extra}" if extra else ""
        self.console.rule(f"[bold]{_shown(title)}[/] [dim]{_shown(f'{position} · {place.phase}{more}')}[/]")

    def say(self, text: str) -> None:
        self.console.print(terminal(text, one_line=False), markup=False)
