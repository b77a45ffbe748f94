"""`ir tabletop`: a playbook run as an exercise, with a scenario's injects; ir.cli.app registers it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ir.cli.common import (
    AnswersOpt,
    As,
    NonInteractive,
    VarOpt,
    answers,
    catalog,
    drive_here,
    open_store,
    person_here,
)
from ir.errors import InvalidPlaybook, UsageError
from ir.sinks import terminal

if TYPE_CHECKING:
    from ir.tabletop.scenario import Scenario


def tabletop(playbook: Annotated[str | None, typer.Argument(help="A playbook id or a path to a YAML file.")] = None,
             scenario: Annotated[str | None, typer.Option(
                 "--scenario", metavar="FILE|ID", help="The scenario: its injects, expected decisions, questions.")
             ] = None,
             answers_: AnswersOpt = None, var: VarOpt = None, non_interactive: NonInteractive = False,
             as_: As = None,
             list_: Annotated[bool, typer.Option("--list", help="List the scenarios (bundled, ./scenarios).")] = False,
             ) -> None:
    """Run a playbook as a tabletop exercise: integrations simulated (unless routed to an exercise channel and
    project in ir.toml), injects delivered as the scenario says, a hotwash and an after-action report."""
    if list_:
        list_scenarios()
        return
    if playbook is None:
        raise UsageError("give the playbook to exercise", hint="run `ir tabletop --list` for the scenarios and "
                                                               "their playbooks")
    from ir import config
    from ir.run.drive import opening, preflight
    from ir.run.incidents import actor_name
    from ir.tabletop.exercise import objective_problems
    from ir.tabletop.scenario import find_scenario, read_scenario, roles_played

    bundle = catalog().bundle(playbook)
    root, story = bundle.playbook, None
    if scenario:
        story, raw = read_scenario(find_scenario(scenario), bundle.playbooks, playbook=root.id)
        bundle = bundle.with_scenario(story.id, raw)
    given = answers(answers_, var)
    if story:  # the scenario's inputs and players, unless the answers file or --var says otherwise
        given = given.over(story.inputs, roles_played(story))
    preflight(given, bundle, non_interactive=non_interactive, dry_run=True)
    if problems := objective_problems(given, story):
        raise InvalidPlaybook(problems)
    routed = config.load(root.integrations).routed()
    person = person_here(non_interactive)
    store, actor = open_store(), actor_name(as_)
    opened = opening(store, bundle, actor, live=bool(routed), exercise=True)  # stored with its first answer
    incident = opened.pending
    sent = f"sent to the exercise channel/project: {', '.join(sorted(routed))}" if routed else "nothing is sent"
    print(terminal(f"Opened exercise {incident.id}: {root.title}" + (f", scenario {story.title}" if story else "")
                   + f" ({sent})"))
    if story:
        _brief(story)
    drive_here(opened.as_store(), bundle, incident, actor, given, person=person)


def list_scenarios() -> None:
    """The scenarios ir can find, one a line: id, playbook, title, where it comes from."""
    from ir.format.catalog import scenarios

    rows = [("SCENARIO", "PLAYBOOK", "TITLE", "SOURCE")] + [
        (terminal(e.id), terminal(e.playbook), terminal(e.title), e.origin if e.origin == "bundled"
         else f"{e.origin}: {terminal(e.path)}") for e in scenarios()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])


def _brief(story: Scenario) -> None:
    for heading, text in (("Background", story.background), ("Objectives", "\n".join(
            f"- {o}" for o in story.objectives)), ("Participants", "\n".join(
            f"- {p.name}" + (f" ({p.role})" if p.role else "") for p in story.participants))):
        if text.strip():
            print(f"{heading}:\n{terminal(text.strip(), one_line=False)}")
