"""`ir tabletop`: a playbook run as an exercise, with a scenario's injects; runner/cli.py registers it."""

from __future__ import annotations

from typing import Annotated

import typer

from ir.cli.incident import AnswersOpt, As, NonInteractive, VarOpt


def tabletop(playbook: Annotated[str, typer.Argument(help="A playbook id or a path to a YAML file.")],
             scenario: Annotated[str | None, typer.Option(
                 "--scenario", metavar="FILE|ID", help="The scenario: its injects, expected decisions, questions.")
             ] = None,
             answers: AnswersOpt = None, var: VarOpt = None, non_interactive: NonInteractive = False,
             as_: As = None) -> None:
    """Run a playbook as a tabletop exercise: integrations simulated (unless routed to an exercise channel and
    project in ir.toml), injects delivered as the scenario says, a hotwash and an after-action report."""
    from ir import config
    from ir.format.catalog import Catalog
    from ir.cli.incident import _answers, _check_first, _drive, _store
    from ir.run.incidents import actor_name, open_incident
    from ir.tabletop.scenario import SCENARIO_PREFIX, bundle_playbooks, find_scenario, read_scenario

    catalog = Catalog()
    loaded = catalog.load(playbook)
    root, bundle = loaded.playbook, catalog.bundle(loaded)
    story = None
    if scenario:
        story, raw = read_scenario(find_scenario(scenario), bundle_playbooks(bundle), playbook=root.id)
        bundle[f"{SCENARIO_PREFIX}{story.id}"] = raw
    given = _answers(answers, var)
    _check_first(given, bundle, root.id, non_interactive=non_interactive, dry_run=True)
    routed = config.load(root.integrations).routed()
    store, actor = _store(), actor_name(as_)
    incident = open_incident(store, root.id, root.version, root.title, root.severity, bundle, root.steps[0].id,
                             actor=actor, live=bool(routed), exercise=True)
    sent = f"sent to the exercise channel/project: {', '.join(sorted(routed))}" if routed else "nothing is sent"
    print(f"Opened exercise {incident.id}: {root.title}" + (f", scenario {story.title}" if story else "")
          + f" ({sent})")
    if story:
        _brief(story)
    _drive(store, incident.id, actor, given, non_interactive=non_interactive)


def _brief(story) -> None:  # noqa: ANN001 - a Scenario
    for heading, text in (("Background", story.background), ("Objectives", "\n".join(
            f"- {o}" for o in story.objectives)), ("Participants", "\n".join(
            f"- {p.name}" + (f" ({p.role})" if p.role else "") for p in story.participants))):
        if text.strip():
            print(f"{heading}:\n{text.strip()}")
