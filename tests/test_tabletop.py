"""`ir tabletop` end to end: whole exercises through every bundled scenario from their answers files, injects on
the timeline exactly where their triggers put them, nothing sent to Slack or Jira unless the exercise is routed to
its own channel and project, the after-action report, bad scenario files, the facilitator's controls at the
terminal, and docs/tabletop.md against the scenario schema."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from test_docs import objects, sections

from ir.format.catalog import Catalog
from ir.format.source import parse
from ir.integrations.registry import capabilities
from ir.run.answers import CAPABILITY_ELEMENTS, Answers, AnswersFile, CorrectiveAction, ExerciseAnswers, check
from ir.store.records import Incident
from ir.store.timeline import Event
from ir.tabletop.aar import render
from ir.tabletop.scenario import Scenario, load_scenario, scenario_schema
from ir.times import parse_duration

from conftest import BUNDLED_SCENARIOS
from runs import kinds, timeline

SCENARIOS = {p.stem: p for p in BUNDLED_SCENARIOS}
ANSWERS = Path(__file__).parent / "answers" / "tabletop"
DOC = Path(__file__).resolve().parents[1] / "docs" / "tabletop.md"

# A small playbook for the clock, the phases and the facilitator's controls: two steps a phase, a decision whose
# branches meet again, and a first recovery step that runs only after `watch`.
DRILL = """\
id: drill
title: Drill
version: "1.0.0"
roles: [{id: commander, title: Incident commander}]
steps:
  - {id: intake, kind: manual, title: Intake, phase: detection-analysis, instructions: Read the alert.}
  - id: decide
    kind: decision
    title: Contain?
    phase: detection-analysis
    question: Contain now or watch?
    default: contain
    choices:
      - {id: contain, label: Contain, next: isolate}
      - {id: watch, label: Watch, next: isolate}
  - {id: isolate, kind: manual, title: Isolate, phase: containment, instructions: Isolate the host.}
  - {id: rebuild, kind: manual, title: Rebuild, phase: eradication, instructions: Rebuild the host.}
  - {id: restore_watch, kind: manual, title: Restore after watching, phase: recovery, instructions: Restore.,
     when: "steps.decide.decision == 'watch'"}
  - {id: restore, kind: manual, title: Restore, phase: recovery, instructions: Restore the host.}
  - {id: review, kind: manual, title: Review, phase: post-incident, instructions: Hold the review.}
"""

DRILL_SCENARIO = """\
id: drill-one
title: Drill one
version: "1.0.0"
playbook: drill
time_compression: {compression}
objectives: [Isolate the host within the hour.]
participants: [{{name: Dana Reyes, role: commander}}]
injects:
  - {{id: beacon, title: A beacon, text: The host beacons., at: {{step: isolate}}}}
  - {{id: press, title: A reporter calls, text: A reporter calls., at: {{adhoc: true}}}}
  - {{id: recovery, title: Recovery begins, text: The backups are ready., at: {{phase: recovery}}}}
  - {{id: watching, title: Watching, text: The attacker notices., at: {{decision: decide, choice: watch}}}}
  - {{id: one_minute, title: A minute in, text: One minute on the exercise clock., at: {{clock: 1m}}}}
expected_decisions:
  decide: {{choice: contain, why: The host beacons.}}
"""


def exercise_id(result: subprocess.CompletedProcess[str]) -> str:
    match = re.search(r"^Opened exercise (IR-\d{8}-[0-9A-Z]{6})", result.stdout, re.M)
    assert match, f"no exercise opened:\n{result.stdout}\n{result.stderr}"
    return match.group(1)


def incidents(run_ir) -> list[dict[str, Any]]:
    result = run_ir("incidents", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def aar(run_ir, incident: str) -> str:
    result = run_ir("export", incident, "--format", "aar")
    assert result.returncode == 0, result.stderr
    return result.stdout


def injects(events: list[dict[str, Any]]) -> list[str | None]:
    return [e["data"]["inject"] for e in events if e["kind"] == "inject"]


def right_after(events: list[dict[str, Any]], anchor: int, inject: str) -> bool:
    """The inject is among the `inject` events that directly follow event `anchor`."""
    n = anchor + 1
    while n < len(events) and events[n]["kind"] == "inject":
        if events[n]["data"]["inject"] == inject:
            return True
        n += 1
    return False


def anchor_of(events: list[dict[str, Any]], at: dict[str, Any], adhoc: dict[str, list[str]], inject: str,
              per_step: float) -> int | None:
    """The event an inject must directly follow, or None when it must not arrive at all; `per_step` is the
    exercise clock's advance at each step (the answers file's pace, compressed)."""
    def first(test: Callable[[dict[str, Any]], bool]) -> int | None:
        return next((n for n, e in enumerate(events) if test(e)), None)

    if "step" in at:
        return first(lambda e: e["kind"] == "step.started" and e["step"] == at["step"])
    if "phase" in at:
        return first(lambda e: e["kind"] == "step.started" and e["phase"] == at["phase"])
    if "decision" in at:
        return first(lambda e: e["kind"] == "decision" and e["step"] == at["decision"]
                     and at.get("choice") in (None, e["data"]["choice"]))
    if at.get("adhoc"):
        sent_at = next((path for path, texts in adhoc.items() if inject in texts), None)
        return first(lambda e: e["kind"] == "step.started" and e["step"] == sent_at) if sent_at else None
    starts = [n for n, e in enumerate(events) if e["kind"] == "step.started"]
    due = parse_duration(at["clock"]).total_seconds()
    return next((n for k, n in enumerate(starts) if k * per_step >= due), None)  # the k-th step starts at k paces


# -- the bundled scenarios -----------------------------------------------------------------------------------

def test_the_bundled_scenarios_load_and_use_every_trigger_kind():
    schema, kinds_used = scenario_schema(), set()
    assert set(SCENARIOS) == {"3cx-2023", "infostealer-dev-laptop", "ivanti-2024", "leaked-key-public-repo",
                              "telemessage-2025", "vendor-support-breach"}
    for name, path in SCENARIOS.items():
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator(schema).validate(data)
        bundle = Catalog(capabilities).bundle(data["playbook"])
        loaded, playbooks = bundle.loaded[bundle.root], bundle.playbooks
        scenario = load_scenario(parse(path.read_bytes(), str(path)), playbooks, playbook=data["playbook"])
        assert scenario.id == name
        assert 6 <= len(scenario.injects) <= 16, name
        assert scenario.background and scenario.narrative and scenario.objectives and scenario.questions, name
        assert {p.role for p in scenario.participants} <= {r.id for r in loaded.playbook.roles}
        assert len(scenario.expected_decisions) >= 4, name
        assert all(i.expect for i in scenario.injects), name
        kinds_used |= {k for i in scenario.injects for k, v in i.at.model_dump().items() if v}
        kinds_used |= {"artefact:" + a.kind for i in scenario.injects for a in i.artefacts}
    assert {"step", "phase", "decision", "choice", "clock", "adhoc"} <= kinds_used
    assert {"artefact:edr-alert", "artefact:email", "artefact:advisory", "artefact:log"} <= kinds_used


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_a_whole_exercise_runs_unattended_through_a_bundled_scenario(run_ir, name):
    scenario = yaml.safe_load(SCENARIOS[name].read_text(encoding="utf-8"))
    answers_file = ANSWERS / f"{name}.yaml"
    answers = yaml.safe_load(answers_file.read_text(encoding="utf-8"))
    result = run_ir("tabletop", scenario["playbook"], "--scenario", name, "--non-interactive",
                    "--answers", str(answers_file))
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stderr == ""
    incident = exercise_id(result)
    assert result.stdout.startswith(f"Opened exercise {incident}: ")
    assert f"scenario {scenario['title']} (nothing is sent)" in result.stdout.splitlines()[0]
    assert result.stdout.rstrip().endswith(f"Exercise finished: {incident}. The after-action report: "
                                           f"`ir export {incident} --format aar`.")
    [listed] = incidents(run_ir)
    assert (listed["id"], listed["exercise"], listed["playbook_id"]) == (incident, True, scenario["playbook"])

    events = timeline(run_ir, incident)
    assert events[0]["kind"] == "incident.opened" and events[0]["data"]["exercise"] is True
    adhoc = answers["exercise"]["adhoc"]
    per_step = parse_duration(answers["exercise"]["pace"]).total_seconds() * scenario["time_compression"]
    arrived = injects(events)
    assert len(arrived) == len(set(arrived)), "an inject arrived twice"
    for inject in scenario["injects"]:
        anchor = anchor_of(events, inject["at"], adhoc, inject["id"], per_step)
        if anchor is None:
            assert inject["id"] not in arrived, inject["id"]
        else:
            assert right_after(events, anchor, inject["id"]), f"{inject['id']} is not right after event {anchor}"
    assert len([i for i in arrived if i]) >= 6
    assert any("clock" in i["at"] and i["id"] in arrived for i in scenario["injects"]), "no clock inject arrived"
    missed = [i for i in scenario["injects"] if i["id"] not in arrived]
    assert [line.split()[1] for line in result.stdout.splitlines() if " did not arrive (" in line] == [
        i["id"] for i in missed]
    for path, texts in adhoc.items():  # free text from the answers file: at the start of its step
        started = kinds(events).index(f"step.started {path}")
        for text in texts:
            if text not in {i["id"] for i in scenario["injects"]}:
                after = events[started + 1:]
                found = next(e for e in after if e["kind"] == "inject" and e["message"] == f"ad hoc: {text}")
                assert all(e["kind"] == "inject" for e in after[:after.index(found)])
                assert found["data"]["inject"] is None
    assert not [e for e in events if e["kind"] == "integration.done"]
    assert run_ir("verify", incident).returncode == 0
    sketch = run_ir("export", incident, "--format", "timesketch-jsonl").stdout.splitlines()
    assert len(sketch) == len(events) and all(json.loads(line)["exercise"] is True for line in sketch)
    rows = list(csv.DictReader(run_ir("export", incident, "--format", "csv").stdout.splitlines(keepends=True)))
    assert len(rows) == len(events) and {(row["incident"], row["exercise"]) for row in rows} == {(incident, "True")}

    report = aar(run_ir, incident)
    assert report.startswith(f"# After-action report: {scenario['title']}\n\n**EXERCISE.** Tabletop exercise "
                             f"{incident}, playbook {scenario['playbook']} ")
    part = sections(report)
    assert list(part) == [f"After-action report: {scenario['title']}", "Objectives", "Participants", "Time per phase",
                          "Injects", "Decisions compared with the scenario", "Strengths", "Areas for improvement",
                          "Improvement plan", "Discussion questions"]  # HSEEP's AAR/IP order, then the questions
    [line] = [line for line in part["Injects"].splitlines() if line.startswith("Did not arrive: ")] or [""]
    assert [title for title, _ in re.findall(r"(?:: |; )(.+?) \((.+?)\)", line)] == [i["title"] for i in missed]
    hotwash = answers["exercise"]["hotwash"]
    for observation in answers["exercise"]["observations"]:
        if observation["kind"] == "strength":
            assert f"- {observation['text']} (step {observation['step']})\n" in part["Strengths"]
        else:
            assert (f"| {observation['text']} | step {observation['step']} | {observation['root_cause']} |\n"
                    in part["Areas for improvement"])
    for text in hotwash["went_well"]:
        assert f"- {text} (hotwash)\n" in part["Strengths"]
    for item in hotwash["improve"]:
        assert f"| {item['text']} | hotwash | {item['root_cause']} |\n" in part["Areas for improvement"]
    rated = {r["objective"]: r for r in hotwash["ratings"]}
    assert sorted(rated) == list(range(1, len(scenario["objectives"]) + 1)), "every objective is rated"
    assert re.findall(r"^\| (\d+) \| (.+) \| ([PSMU]): [a-z ]+ \| (.+) \|$", part["Objectives"], re.M) == [
        (str(n), objective, rated[n]["rating"], rated[n]["why"])
        for n, objective in enumerate(scenario["objectives"], 1)]
    assert {r["rating"] for r in hotwash["ratings"]} >= {"P", "S", "M"}
    follow_ups = sections(run_ir("export", incident, "--format", "markdown").stdout)["Follow-up actions"]
    first = answers["exercise"]["actions"][0]
    assert (f"- {first['action']} ({first['capability']}), owner {first['owner']}, start {first['start']}, due "
            f"{first['due']}\n") in follow_ups.replace("\\", "").replace("\n  ", " ")  # an item wrapped at 80 columns
    plan = part["Improvement plan"]
    assert plan.startswith("\n| corrective action | capability element | owner | start | due |\n")
    for action in answers["exercise"]["actions"]:
        assert (f"| {action['action']} | {action['capability']} | {action['owner']} | {action['start']} | "
                f"{action['due']} |\n") in plan
    assert {a["capability"] for a in answers["exercise"]["actions"]} == {
        "planning", "organization", "equipment", "training", "exercise"}
    assert re.findall(r"^\| ([a-z-]+) \| \S+ \| \S+ \| (?:\d+d \d+h \d\dm|\d+h \d\dm|\d+m \d\ds|\d+s) \|$",
                      part["Time per phase"], re.M) == [
        "detection-analysis", "containment", "eradication", "recovery", "post-incident"]
    rows = {row[0]: row for row in re.findall(r"^\| ([a-z_/0-9]+) \| ([a-z_0-9]+|-) \| .* \| (yes|\*\*no\*\*|-|not "
                                              r"reached) \|$", part["Decisions compared with the scenario"], re.M)}
    taken = {path: given if isinstance(given, str) else given.get("choice")
             for path, given in answers["steps"].items()}
    mismatched = [path for path, expected in scenario["expected_decisions"].items()
                  if taken.get(path) not in (None, expected["choice"])]
    assert len(mismatched) == 1, "each answers file makes exactly one decision the scenario did not expect"
    for path, expected in scenario["expected_decisions"].items():
        assert rows[path] == (path, taken.get(path) or expected["choice"], "**no**" if path in mismatched else "yes")
    for observation in answers["exercise"]["observations"]:
        assert observation["step"] in {e["step"] for e in events if e["kind"] == "observation"}
    for inject in scenario["injects"]:  # discussion questions: the scenario's, and those of the injects delivered
        for question in inject.get("questions", []):
            assert (f"- {question}\n" in part["Discussion questions"]) == (inject["id"] in arrived), question
    assert all(f"- {q}\n" in part["Discussion questions"] for q in scenario["questions"])


def test_the_after_action_report_follows_hseep():
    """In process, from events as an exercise records them: the overview with its end, the objectives with their
    P/S/M/U ratings, strengths, areas for improvement with root causes, and the improvement plan row by row; a
    hotwash recorded before root causes were asked (no `root_causes`) still reads."""
    scenario = Scenario(id="drill-one", title="Drill one", version="1.0.0", playbook="drill",
                        objectives=["Isolate the host within the hour.", "Tell legal before noon."])
    incident = Incident("IR-20261201-ABCDEF", "drill", "1.0.0", "0" * 64, "Drill", "high", "dry-run", True,
                        "2026-12-01T09:00:00+00:00", "Dana Reyes")

    def event(seq: int, what: str, at: str, message: str = "", step: str | None = None, phase: str | None = None,
              **data: Any) -> Event:
        return Event(incident.id, seq, what, f"2026-12-01T{at}:00+00:00", f"2026-12-01T{at}:00.000Z", "Dana Reyes",
                     message, phase, step, data)

    events = [
        event(1, "step.started", "09:00", step="isolate", phase="containment"),
        event(2, "observation", "09:10", "Isolation took one call.", step="isolate", kind="strength", root_cause=None),
        event(3, "observation", "09:20", "Nobody knew who may isolate a server.", step="isolate", kind="gap",
              root_cause="The playbook names no owner for isolation."),
        event(4, "step.completed", "11:05", step="isolate", phase="containment"),
        event(5, "hotwash", "11:30", went_well=["The scribe kept up."], improve=["Legal heard late."],
              ratings=[{"objective": 1, "rating": "S", "why": "Done in 2 hours.", "title": "Isolate the host within "
                        "the hour."}]),
        event(6, "corrective_action", "11:31", "Name an isolation owner", capability="organization",
              owner="Sam Okafor", start="2026-12-02", due="2026-12-15"),
        event(7, "corrective_action", "11:32", "Drill the legal call", capability=None, owner=None, start=None,
              due=None),
    ]
    out = io.StringIO()
    render(incident, scenario, events, out, UTC)
    report = out.getvalue()
    assert [line for line in report.splitlines() if line.startswith("#")] == [
        "# After-action report: Drill one", "## Objectives", "## Time per phase", "## Strengths",
        "## Areas for improvement", "## Improvement plan"]
    part = sections(report)
    assert part["After-action report: Drill one"] == (
        "\n**EXERCISE.** Tabletop exercise IR-20261201-ABCDEF, playbook drill 1.0.0, scenario drill-one 1.0.0; "
        "facilitated by Dana Reyes; started 2026-12-01T09:00:00+00:00; ended 2026-12-01T11:32:00+00:00.\n\n")
    assert part["Objectives"].split("\n")[3:] == [
        "| # | objective | rating | why |", "|---|---|---|---|",
        "| 1 | Isolate the host within the hour. | S: performed with some challenges | Done in 2 hours. |",
        "| 2 | Tell legal before noon. | not rated |  |", "", ""]
    assert part["Objectives"].startswith("\nRated as HSEEP does: **P** performed without challenges; **S** "
                                         "performed with some challenges; **M** performed with major challenges; "
                                         "**U** unable to be performed.\n")
    assert part["Time per phase"] == ("\n| phase | from | to | duration |\n|---|---|---|---|\n"
                                      "| containment | 2026-12-01T09:00:00+00:00 | 2026-12-01T11:05:00+00:00 | "
                                      "2h 05m |\n\n")
    assert part["Strengths"] == "\n- Isolation took one call. (step isolate)\n- The scribe kept up. (hotwash)\n\n"
    assert part["Areas for improvement"] == (
        "\n| area for improvement | observed | root cause |\n|---|---|---|\n"
        "| Nobody knew who may isolate a server. | step isolate | The playbook names no owner for isolation. |\n"
        "| Legal heard late. | hotwash | not recorded |\n\n")
    assert part["Improvement plan"] == (
        "\n| corrective action | capability element | owner | start | due |\n|---|---|---|---|---|\n"
        "| Name an isolation owner | organization | Sam Okafor | 2026-12-02 | 2026-12-15 |\n"
        "| Drill the legal call | - | - | - | - |\n")


def test_answers_ratings_root_causes_and_action_dates_are_checked(run_ir, isolated):
    """A rating for an objective the scenario does not have, a root cause on a strength, an action that starts
    after it is due, a capability element HSEEP does not name: refused before the exercise opens."""
    (isolated / "bad.yaml").write_text(
        "exercise:\n"
        "  hotwash: {ratings: [{objective: 9, rating: P}]}\n")
    result = run_ir("tabletop", "supply-chain", "--scenario", "3cx-2023", "--non-interactive", "--answers", "bad.yaml")
    assert (result.returncode, result.stderr) == (1, "bad.yaml:2:35: exercise.hotwash.ratings[0].objective: the "
                                                     "scenario has no objective 9\n"
                                                     "  fix: number its objectives from 1 to 8\n")
    for text, message in [
        ("observations: [{step: intake, kind: strength, text: Good., root_cause: Luck.}]",
         "only a gap has a root cause"),
        ("actions: [{action: A, start: 2026-12-02, due: 2026-12-01}]", "the action starts (2026-12-02) after it is "
                                                                        "due (2026-12-01)"),
        ("actions: [{action: A, capability: budget}]", "'planning', 'organization', 'equipment', 'training' or "
                                                       "'exercise'"),
    ]:
        (isolated / "bad.yaml").write_text(f"exercise:\n  {text}\n")
        result = run_ir("tabletop", "supply-chain", "--scenario", "3cx-2023", "--non-interactive", "--answers",
                        "bad.yaml")
        assert result.returncode == 1 and message in result.stderr, result.stderr
    assert incidents(run_ir) == []


def test_a_clock_inject_arrives_at_the_next_step_start_once_the_compressed_clock_passes_it(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "drill.yaml").write_text(DRILL)
    (isolated / "fast.yaml").write_text(DRILL_SCENARIO.format(compression=1_000_000))  # a millisecond: 16 minutes
    (isolated / "slow.yaml").write_text(DRILL_SCENARIO.format(compression=0.001))  # a minute: 17 hours

    fast = run_ir("tabletop", "drill", "--scenario", "fast.yaml", "--non-interactive")
    assert fast.returncode == 0, fast.stderr
    events = timeline(run_ir, exercise_id(fast))
    assert kinds(events)[kinds(events).index("step.started intake"):][:2] == ["step.started intake",
                                                                               "inject intake"]
    assert injects(events) == ["one_minute", "beacon", "recovery"]
    assert events[kinds(events).index("inject intake")]["data"]["trigger"] == "exercise clock 1m"

    slow = run_ir("tabletop", "drill", "--scenario", "slow.yaml", "--non-interactive")
    assert slow.returncode == 0, slow.stderr
    assert injects(timeline(run_ir, exercise_id(slow))) == ["beacon", "recovery"]


def test_the_exercise_clock_stops_while_the_exercise_is_paused(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "drill.yaml").write_text(DRILL)
    (isolated / "drill.yaml").write_text(DRILL_SCENARIO.format(compression=15))  # 1m: 4 s of wall-clock time

    paused = run_ir("tabletop", "drill", "--scenario", "drill.yaml", input="\np\n")  # no commander; pause
    incident = exercise_id(paused)
    assert "Not delivered yet: " in sections(aar(run_ir, incident))["Injects"]  # the exercise is not over
    time.sleep(6)  # 90 s on the exercise clock, had it kept running
    resumed = run_ir("resume", incident, "--non-interactive")
    assert resumed.returncode == 0, resumed.stderr
    assert injects(timeline(run_ir, incident)) == ["beacon", "recovery"]


def test_a_phase_inject_arrives_at_the_first_step_of_the_phase_that_runs(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "drill.yaml").write_text(DRILL)
    (isolated / "drill.yaml").write_text(DRILL_SCENARIO.format(compression=1))
    (isolated / "watch.yaml").write_text("steps: {decide: watch}\n")

    contained = run_ir("tabletop", "drill", "--scenario", "drill.yaml", "--non-interactive")
    events = timeline(run_ir, exercise_id(contained))
    assert "step.skipped restore_watch" in kinds(events)  # its `when` is false: the phase starts at `restore`
    assert right_after(events, kinds(events).index("step.started restore"), "recovery")

    watched = run_ir("tabletop", "drill", "--scenario", "drill.yaml", "--non-interactive", "--answers", "watch.yaml")
    events = timeline(run_ir, exercise_id(watched))
    assert right_after(events, kinds(events).index("step.started restore_watch"), "recovery")
    assert right_after(events, kinds(events).index("decision decide"), "watching")
    assert "| decide | watch |  | contain: The host beacons. | **no** |" in aar(run_ir, exercise_id(watched))


# -- Slack and Jira -------------------------------------------------------------------------------------------

def fakes_env(slack_server, jira_server) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": slack_server.token, "IR_SLACK_BASE_URL": slack_server.url,
            "JIRA_URL": jira_server.url, "JIRA_USER": jira_server.user, "JIRA_API_TOKEN": jira_server.token}


def test_nothing_reaches_slack_or_jira_unless_the_exercise_is_routed(run_ir, isolated, slack_server, jira_server):
    (isolated / "ir.toml").write_text('[slack]\nchannels = ["leadership"]\n\n[jira]\nproject = "IR"\n')
    result = run_ir("tabletop", "supply-chain", "--scenario", "3cx-2023", "--non-interactive", "--answers",
                    str(ANSWERS / "3cx-2023.yaml"), env=fakes_env(slack_server, jira_server))
    assert result.returncode == 0, result.stderr
    assert slack_server.requests == [] and jira_server.requests == []
    assert "(nothing is sent)" in result.stdout.splitlines()[0]
    assert "would post to the incident channel: *Declared: " in result.stdout  # shown to the room as it would look
    events = timeline(run_ir, exercise_id(result))
    assert {e["kind"] for e in events if e["kind"].startswith("integration.") and e["kind"] != "integration.requested"
            } == {"integration.dry_run"}


LIVE_DRILL = """\
id: live-drill
title: Live drill
version: "1.0.0"
incident_title: "Trojanized softphone"
steps:
  - {id: channel, kind: notify, action: create_channel, title: Open the channel, phase: detection-analysis}
  - {id: ticket, kind: ticket, action: create, title: Open the ticket, phase: detection-analysis,
     summary: "{{ incident.title }}"}
  - {id: announce, kind: notify, title: Announce, phase: detection-analysis, message: "Declared"}
  - {id: tell_users, kind: notify, title: Tell the users, phase: containment, channel: "#general",
     message: "Do not use the softphone"}
  - {id: comment, kind: ticket, action: comment, title: Comment, phase: containment, comment: "Containment begins"}
  - {id: status, kind: notify, action: status, title: Post the status, phase: recovery, message: "Recovering"}
"""


def test_a_routed_exercise_sends_only_to_its_own_channel_and_project(run_ir, isolated, slack_server, jira_server):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "live-drill.yaml").write_text(LIVE_DRILL)
    (isolated / "ir.toml").write_text('[slack]\nchannels = ["leadership"]\n\n[jira]\nproject = "IR"\n\n'
                                      '[exercise]\nslack_channel = "ir-exercise"\njira_project = "EXR"\n')
    slack_server.add_channel("leadership")
    slack_server.add_channel("general")
    jira_server.add_project("EXR", "Exercises")

    result = run_ir("tabletop", "live-drill", "--non-interactive", env=fakes_env(slack_server, jira_server))
    assert result.returncode == 0, result.stderr + result.stdout
    assert "(sent to the exercise channel/project: jira, slack)" in result.stdout.splitlines()[0]
    assert "not delivered" not in result.stdout

    assert slack_server.messages("leadership") == [] and slack_server.messages("general") == []
    texts = [m["text"] for m in slack_server.messages("ir-exercise")]
    assert texts[:2] == ["[EXERCISE] Declared", "[EXERCISE] Do not use the softphone"]  # not in #general
    assert texts[2].startswith("[EXERCISE] *Trojanized softphone* (") and texts[2].endswith("\nRecovering")
    assert len(texts) == 3 and slack_server.pins("ir-exercise") == [slack_server.messages("ir-exercise")[2]["ts"]]
    assert all(call.args["channel"] == slack_server.channels["ir-exercise"]["id"]
               for call in slack_server.calls("chat.postMessage"))
    issues = list(jira_server.issues.values())
    assert [(i["fields"]["project"]["key"], i["fields"]["summary"]) for i in issues] == [
        ("EXR", "[EXERCISE] Trojanized softphone")]
    comments = jira_server.comments(issues[0]["key"])
    assert len(comments) == 1 and comments[0].startswith("[EXERCISE] Containment begins")


def test_a_routed_exercise_of_a_bundled_playbook_invites_nobody(run_ir, isolated, slack_server, jira_server):
    (isolated / "ir.toml").write_text('[exercise]\nslack_channel = "ir-exercise"\njira_project = "EXR"\n')
    jira_server.add_project("EXR", "Exercises")
    result = run_ir("tabletop", "supply-chain", "--scenario", "3cx-2023", "--non-interactive", "--answers",
                    str(ANSWERS / "3cx-2023.yaml"), env=fakes_env(slack_server, jira_server))
    assert result.returncode == 0, result.stderr
    assert slack_server.calls("conversations.invite") == [] and slack_server.calls("usergroups.list") == []
    assert "not delivered" not in result.stdout


# -- bad scenarios --------------------------------------------------------------------------------------------

BAD = """\
id: bad-drill
title: Bad
version: "1.0.0"
playbook: supply-chain
participants:
  - {name: Dana Reyes, role: captain}
injects:
  - {id: one, title: One, text: An unknown step., at: {step: nope}}
  - {id: two, title: Two, text: No such choice., at: {decision: affected, choice: maybe}}
  - {id: one, title: Three, text: Not a decision., at: {decision: intake}}
expected_decisions:
  hands_on_keyboard: {choice: panic}
"""


@pytest.mark.parametrize(("text", "args", "stderr"), [
    (BAD, (), "bad.yaml:6:30: participants[0].role: the playbook supply-chain has no role 'captain'\n"
              "  fix: its roles: commander, scribe, liaison, legal, executive, endpoint, soc, forensics, network, "
              "iam, app_owner, security_eng, risk\n"
              "bad.yaml:8:62: injects[0].at.step: no step 'nope' in supply-chain\n"
              "  fix: use a step path (`include_step/step` inside an included playbook)\n"
              "bad.yaml:9:83: injects[1].at.choice: decision affected has no choice 'maybe'\n"
              "  fix: its choices: affected, not_affected\n"
              "bad.yaml:10:10: injects[2].id: duplicate inject id 'one'\n"
              "  fix: give each inject its own id\n"
              "bad.yaml:10:67: injects[2].at.decision: 'intake' is not a decision of supply-chain\n"
              "  fix: use a decision step's path\n"
              "bad.yaml:12:31: expected_decisions.hands_on_keyboard.choice: decision hands_on_keyboard has no "
              "choice 'panic'\n"
              "  fix: its choices: hands_on_keyboard, implant_only\n"),
    (BAD.replace("at: {step: nope}", "at: {step: intake, clock: 1h}"), (),
     "bad.yaml:8:55: injects[0].at: give exactly one of step, phase, decision, clock or adhoc (got step, clock)\n"),
    ("\x00\x01binary", (), "bad.yaml:1:1: the file is binary, not YAML text\n"
                           "  fix: point ir at a .yaml playbook file\n"),
    (None, ("--scenario", "telemessage-2025"), None),
])
def test_a_bad_scenario_is_refused_with_its_line_and_opens_nothing(run_ir, isolated, text, args, stderr):
    if text is not None:
        (isolated / "bad.yaml").write_text(text)
    result = run_ir("tabletop", "supply-chain", *(args or ("--scenario", "bad.yaml")), "--non-interactive")
    if stderr is None:  # a scenario for another playbook
        path = SCENARIOS["telemessage-2025"]
        stderr = (f"{path}:7:11: playbook: the scenario is for playbook exploited-vulnerability, not supply-chain\n"
                  f"  fix: run `ir tabletop exploited-vulnerability --scenario {path}`\n")
    assert (result.returncode, result.stderr, result.stdout) == (1, stderr, "")
    assert incidents(run_ir) == []


def test_an_unknown_scenario_is_a_usage_error(run_ir):
    result = run_ir("tabletop", "supply-chain", "--scenario", "3cx-2024")
    assert (result.returncode, result.stderr) == (2, "error: no scenario with id '3cx-2024'\n"
                                                     "  fix: known: 3cx-2023, infostealer-dev-laptop, ivanti-2024, "
                                                     "leaked-key-public-repo, telemessage-2025, vendor-support-breach\n")
    assert incidents(run_ir) == []


def test_ir_validate_checks_a_scenario_file_like_ir_tabletop(run_ir, isolated):
    (isolated / "bad.yaml").write_text(BAD)
    tabletop = run_ir("tabletop", "supply-chain", "--scenario", "bad.yaml", "--non-interactive")
    validated = run_ir("validate", "bad.yaml")
    assert (validated.returncode, validated.stdout) == (1, "")
    assert validated.stderr == tabletop.stderr + "1 of 1 file(s) invalid, 6 problem(s)\n"
    assert tabletop.stderr.startswith("bad.yaml:6:30: participants[0].role: the playbook supply-chain has no role")
    (isolated / "lost.yaml").write_text('id: lost\ntitle: Lost\nversion: "1.0.0"\nplaybook: nosuch\n')
    lost = run_ir("validate", "lost.yaml")
    assert (lost.returncode, lost.stderr) == (1, "lost.yaml:4:11: playbook: no playbook 'nosuch'\n"
                                                 "  fix: run `ir list` for the playbook ids\n"
                                                 "1 of 1 file(s) invalid, 1 problem(s)\n")


def test_an_unknown_scenario_field_suggests_a_scenario_field(run_ir, isolated):
    (isolated / "bad.yaml").write_text(BAD.replace("injects:", "injets: []\ninjects:"))
    result = run_ir("tabletop", "supply-chain", "--scenario", "bad.yaml")
    assert "bad.yaml:7:1: injets: unknown field `injets`\n  fix: did you mean `injects`?\n" in result.stderr


# -- the facilitator at the terminal --------------------------------------------------------------------------

def test_the_facilitator_sends_injects_jumps_observes_pauses_and_resumes(run_ir, isolated):
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "drill.yaml").write_text(DRILL)
    (isolated / "scenarios").mkdir()
    (isolated / "scenarios" / "drill-one.yaml").write_text(DRILL_SCENARIO.format(compression=1))
    typed = "\n".join([                # the commander is the scenario's participant: not asked
        "i",                           # intake: next inject (the first in scenario order: beacon)
        "b", "x", "s", "Intake read the alert aloud",   # an observation: x is neither, asked again
        "j", "nowhere",                # a jump to an unknown step: refused, the menu again
        "c",                           # complete intake
        "1 beacon seen",               # decide: contain, and why
        "b", "g", "Nobody owned the isolation", "No isolation owner",  # isolate: a gap, with its root cause
        "j", "restore",                # jump over rebuild to restore (the recovery phase's inject arrives)
        "p",                           # pause
    ]) + "\n"
    first = run_ir("tabletop", "drill", "--scenario", "drill-one", input=typed)
    assert first.returncode == 0, first.stderr
    incident = exercise_id(first)
    out = first.stdout
    assert "[a]d-hoc inject  [j]ump  o[b]servation  end: [h]otwash >" in out  # the step menu's facilitator controls
    assert "INJECT beacon (sent by the facilitator): A beacon" in out
    assert "no step 'nowhere'; steps: intake, decide, isolate, rebuild, restore_watch," in out
    assert "INJECT recovery (phase recovery): Recovery begins" in out
    assert out.rstrip().endswith(f"Paused {incident}; nothing is lost. Continue with: ir resume {incident}")

    typed = "\n".join([
        "a", "press",                  # restore: the scenario's ad-hoc inject, by its id
        "a", "The CEO is on the phone",  # and one in the facilitator's own words
        "i",                           # next inject: only `watching` and `one_minute` are left
        "c",                           # complete restore
        "c",                           # complete review
        "x", "s", "Two hours, not one",  # hotwash: the objective rated (x is no rating: asked again), and why
        "Isolation was fast", "",      # went well
        "Ownership of isolation", "No owner in the playbook", "",  # improve, with its root cause
        "Name an isolation owner", "budget", "Organization", "Sam Okafor", "soon", "2026-11-20", "2026-12-01",
        "",                            # an action: capability element, owner, start, due (bad ones asked again)
    ]) + "\n"
    second = run_ir("resume", incident, input=typed)
    assert second.returncode == 0, second.stderr
    assert "INJECT press (sent by the facilitator): A reporter calls" in second.stdout
    assert "INJECT (ad hoc): The CEO is on the phone" in second.stdout
    assert "INJECT watching (sent by the facilitator): Watching" in second.stdout
    assert "INJECT beacon" not in second.stdout and "INJECT recovery" not in second.stdout
    assert f"Exercise finished: {incident}." in second.stdout

    events = timeline(run_ir, incident)
    assert injects(events) == ["beacon", "recovery", "press", None, "watching"]
    assert [(e["step"], e["data"]["trigger"]) for e in events if e["kind"] == "inject"] == [
        ("intake", "sent by the facilitator"), ("restore", "phase recovery"), ("restore", "sent by the facilitator"),
        ("restore", "facilitator"), ("restore", "sent by the facilitator")]
    assert [(e["step"], e["data"]["kind"], e["message"]) for e in events if e["kind"] == "observation"] == [
        ("intake", "strength", "Intake read the alert aloud"), ("isolate", "gap", "Nobody owned the isolation")]
    assert "step.skipped isolate" in kinds(events) and "step.started rebuild" not in kinds(events)
    assert next(e for e in events if e["kind"] == "step.skipped")["message"] == "facilitator jumped to restore"
    assert [e["kind"] for e in events].count("incident.paused") == 1
    assert [e["kind"] for e in events].count("incident.resumed") == 1

    report = sections(aar(run_ir, incident))
    assert report["Strengths"] == ("\n- Intake read the alert aloud (step intake)\n- Isolation was fast (hotwash)\n\n")
    assert report["Areas for improvement"] == ("\n| area for improvement | observed | root cause |\n|---|---|---|\n"
                                               "| Nobody owned the isolation | step isolate | No isolation owner |\n"
                                               "| Ownership of isolation | hotwash | No owner in the playbook |\n\n")
    assert ("| Name an isolation owner | organization | Sam Okafor | 2026-11-20 | 2026-12-01 |"
            in report["Improvement plan"])
    assert ("| 1 | Isolate the host within the hour. | S: performed with some challenges | Two hours, not one |"
            in report["Objectives"])
    assert "  choose one of: P, S, M, U\n" in second.stdout and "  a date like 2026-07-22 is needed\n" in second.stdout
    assert "| decide | contain | beacon seen | contain: The host beacons. | yes |" in report[
        "Decisions compared with the scenario"]
    assert "| Dana Reyes | commander |  |" in report["Participants"]


# -- the schema and the documentation -------------------------------------------------------------------------

# The heading of docs/tabletop.md that documents each object of the scenario schema.
DOC_SECTIONS = {"Scenario": "The scenario", "Participant": "Participants", "Inject": "Injects",
                "Trigger": "Triggers", "Artefact": "Artefacts", "Expected": "Expected decisions"}


def undocumented(doc: str) -> list[str]:
    schema, by_heading = scenario_schema(), sections(doc)
    found = objects(schema)
    assert set(found) == set(DOC_SECTIONS), "a new object in the scenario schema: document it, add it here"
    return [f"{title}.{field}" for title, node in found.items() for field in node["properties"]
            if f"| `{field}` |" not in by_heading.get(DOC_SECTIONS[title], "")]


def test_every_scenario_field_is_documented():
    assert undocumented(DOC.read_text(encoding="utf-8")) == []


def test_an_undocumented_scenario_field_is_caught():
    doc = DOC.read_text(encoding="utf-8")
    row = next(line for line in doc.splitlines() if line.startswith("| `time_compression` |"))
    assert undocumented(doc.replace(row + "\n", "")) == ["Scenario.time_compression"]


# The heading of docs/tabletop.md that documents each object of an answers file's `exercise:` section.
EXERCISE_SECTIONS = {"ExerciseAnswers": "The exercise section", "Observation": "Observations", "Hotwash": "Hotwash",
                     "Rating": "Ratings", "Improvement": "Areas for improvement",
                     "CorrectiveAction": "Corrective actions"}


def test_every_field_of_the_exercise_section_is_documented():
    found, by_heading = objects(ExerciseAnswers.model_json_schema()), sections(DOC.read_text(encoding="utf-8"))
    assert set(found) == set(EXERCISE_SECTIONS), "a new object in the exercise section: document it, add it here"
    assert [f"{title}.{name}" for title, node in found.items() for name in node["properties"]
            if f"| `{name}` |" not in by_heading.get(EXERCISE_SECTIONS[title], "")] == []
    elements = CorrectiveAction.model_json_schema()["properties"]["capability"]["anyOf"][0]["enum"]
    assert elements == list(CAPABILITY_ELEMENTS) == ["planning", "organization", "equipment", "training", "exercise"]
    assert all(f"`{e}`" in by_heading["Corrective actions"] for e in elements)


def test_every_artefact_kind_facilitator_control_and_bundled_scenario_is_documented():
    doc = DOC.read_text(encoding="utf-8")
    kinds_schema = scenario_schema()["$defs"]["Artefact"]["properties"]["kind"]["enum"]
    assert [k for k in kinds_schema if f"`{k}`" not in doc] == []
    controls = re.findall(r"^\| `([a-z])` \|", sections(doc)["The facilitator's controls"], re.M)
    assert controls == ["i", "a", "j", "b", "h", "p"]
    assert [f"### `{name}`" in doc for name in SCENARIOS] == [True] * len(SCENARIOS)
    assert "[docs/tabletop.md](docs/tabletop.md)" in (DOC.parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_docs_examples_are_a_valid_scenario_and_answers_file():
    examples = re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)
    answers_text, scenario_text = examples
    bundle = Catalog(capabilities).bundle("supply-chain")
    playbooks = bundle.playbooks
    scenario = load_scenario(parse(scenario_text.encode(), "doc.yaml"), playbooks, playbook="supply-chain")
    assert {k for i in scenario.injects for k, v in i.at.model_dump().items() if v} == {
        "step", "phase", "decision", "choice", "clock", "adhoc"}
    data = yaml.safe_load(answers_text)
    AnswersFile.model_validate(data)
    answers = Answers(data["inputs"], data["roles"], {p: a if isinstance(a, dict) else {"choice": a}
                                                      for p, a in data["steps"].items()},
                      exercise=AnswersFile.model_validate(data).exercise)
    assert check(answers, playbooks, "supply-chain", complete=False, examples=True) == []
    assert set(data["exercise"]["adhoc"]) <= dict(bundle.paths()).keys()


def test_ir_schema_scenario_prints_the_scenario_schema(run_ir, isolated):
    result = run_ir("schema", "--scenario")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == scenario_schema()
    assert scenario_schema()["$id"].endswith("/scenario.schema.json")
    assert run_ir("schema", "--scenario", "-o", "scenario.schema.json").returncode == 0
    assert json.loads((isolated / "scenario.schema.json").read_text()) == scenario_schema()
    assert json.loads(run_ir("schema").stdout)["title"] == "Playbook"


def test_the_example_answers_files_say_what_they_do():
    files = sorted(ANSWERS.glob("*.yaml"))
    assert files, f"no answers files in {ANSWERS}"
    for path in files:
        assert path.stem in SCENARIOS, path
        assert path.read_text(encoding="utf-8").startswith(f"# An unattended run of the {path.stem} scenario")
