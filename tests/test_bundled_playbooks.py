"""The bundled playbooks, end to end: each one validates and shows, and each answers file in tests/answers/ runs
non-interactively in dry-run along its branch. The steps taken are compared with the paths written in
tests/answers/README.md (the one place they are written down), the decisions with the answers files, and the
integration actions with the notify and ticket steps of the playbooks' own models."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import inprocess
import pytest
import yaml

from ir.format.catalog import Catalog
from ir.format.model import DecisionStep, IncludeStep, NotifyStep, Step, TicketStep
from ir.integrations.registry import capabilities
from ir.store.sqlite import SqliteStore

from conftest import BUNDLED_SCENARIOS, ISOLATED_PREFIXES, isolated_environment
from runs import incident_id, timeline, unsealed

ANSWERS = Path(__file__).parent / "answers"
FILES = sorted(ANSWERS.glob("*.yaml"))
BUNDLED = sorted(p.stem for p in (Path(__file__).parents[1] / "playbooks").glob("*.yaml"))
README = (ANSWERS / "README.md").read_text(encoding="utf-8")
# A branch's section: "### `<file>`", a description, then the path in a ```text block.
SECTIONS = re.findall(r"^### `([^`]+)`\n.*?^```text\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)
# A row of the coverage table: | playbook | `decision` | `choice` | branch, branch |
ROWS = re.findall(r"^\| ([a-z-]+) \| `([^`]+)` \| `([^`]+)` \| ([^|]+) \|$", README, re.MULTILINE)


def _ids(files: list[Path]) -> list[str]:
    return [f.stem for f in files]


def _branches(prefix: str) -> list[Path]:
    return [f for f in FILES if f.name.startswith(prefix)]


def _load(file: Path) -> dict[str, Any]:
    return yaml.safe_load(file.read_text(encoding="utf-8"))


def _playbook(file: Path) -> str:
    return file.stem.split("--")[0]  # <playbook-id>--<branch>.yaml


@dataclass(frozen=True)
class Run:
    file: Path
    answers: dict[str, Any]
    result: subprocess.CompletedProcess[str]
    events: list[dict[str, Any]]  # empty when the run failed
    verify: subprocess.CompletedProcess[str] | None

    @property
    def playbook(self) -> str:
        return _playbook(self.file)

    @property
    def branch(self) -> str:
        return self.file.stem.split("--")[1]

    @property
    def steps(self) -> dict[str, Any]:
        return self.answers["steps"]

    def shown(self, action: str) -> list[str]:
        """The "would ..." messages of one integration action, in order."""
        return [e["message"] for e in self.events
                if e["kind"] == "integration.dry_run" and e["data"]["action"] == action]

    def decision(self, step: str) -> str:
        return next(e["data"]["choice"] for e in self.events if e["kind"] == "decision" and e["step"] == step)


def _ir(root: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`ir ARGS` isolated as a test is (conftest.py), in an environment and working directory of its own under
    root: a run is shared by the tests of a whole session, so it cannot live in one test's tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ISOLATED_PREFIXES)} | isolated_environment(root)
    work = root / "work"
    work.mkdir()

    def ir(*args: str) -> subprocess.CompletedProcess[str]:
        return inprocess.run(args, env=env, cwd=work)

    return ir


def _run(root: Path, file: Path) -> dict[str, Any]:
    """One answers file run in dry-run, its timeline and `ir verify`, as JSON data. The timeline is read from the
    store in process (what `ir timeline --json` prints, one process less per file); the run and the verify are the
    real CLI."""
    ir = _ir(root)
    result = ir("run", _playbook(file), "--dry-run", "--non-interactive", "--answers", str(file))
    if result.returncode != 0:
        return {"result": vars(result), "events": [], "verify": None}
    incident = incident_id(result)
    store = SqliteStore(root / "home" / ".ir" / "ir.db")
    try:
        events = [json.loads(json.dumps(event.as_dict(), ensure_ascii=False)) for event in store.events(incident)]
    finally:
        store.close()
    return {"result": vars(result), "events": events, "verify": vars(ir("verify", incident))}


class Runs:
    """Each answers file run once per session, by file name. Under pytest-xdist, whichever worker asks for a file
    first runs it (holding the file's lock) and saves the outcome in the directory all workers share; the others
    wait for the lock and read it. So the 26 runs are spread over the workers and none is done twice."""

    def __init__(self, shared: Path) -> None:
        self.shared = shared
        self._read: dict[str, Run] = {}

    def __getitem__(self, name: str) -> Run:
        if name not in self._read:
            self._read[name] = self._run_once(ANSWERS / name)
        return self._read[name]

    def values(self) -> list[Run]:
        return [self[file.name] for file in FILES]

    def _run_once(self, file: Path) -> Run:
        saved = self.shared / f"{file.stem}.json"
        with (self.shared / f"{file.stem}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not saved.exists():
                partial = saved.with_suffix(".partial")
                partial.write_text(json.dumps(_run(self.shared / file.stem, file)), encoding="utf-8")
                partial.rename(saved)
            data = json.loads(saved.read_text(encoding="utf-8"))
        verify = data["verify"] and subprocess.CompletedProcess(**data["verify"])
        return Run(file, _load(file), subprocess.CompletedProcess(**data["result"]), data["events"], verify)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "bundled-runs"  # xdist: gwN/..
    shared.mkdir(exist_ok=True)
    return Runs(shared)


@pytest.fixture
def catalog(isolated: Path) -> Catalog:
    return Catalog(capabilities)  # no ./playbooks and no IR_PLAYBOOK_PATH here: the bundled set


def step_at(catalog: Catalog, playbook: str, path: str) -> Step:
    """The step a path such as `escalate/new_evidence/volatile` names, through the include steps."""
    *includes, last = path.split("/")
    model = catalog.load(playbook).playbook
    for part in includes:
        include = model.step(part)
        assert isinstance(include, IncludeStep), path
        model = catalog.load(include.playbook).playbook
    return model.step(last)


def choices(catalog: Catalog, playbook: str, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(step path, choice id) of every choice of every decision, those of included playbooks included."""
    for step in catalog.load(playbook).playbook.steps:
        if isinstance(step, DecisionStep):
            yield from ((prefix + step.id, choice.id) for choice in step.choices)
        elif isinstance(step, IncludeStep):
            yield from choices(catalog, step.playbook, f"{prefix}{step.id}/")


def reached(catalog: Catalog, playbook: str) -> set[str]:
    """The playbook and every playbook it includes, directly or not."""
    steps = catalog.load(playbook).playbook.steps
    return {playbook}.union(*(reached(catalog, s.playbook) for s in steps if isinstance(s, IncludeStep)))


def path_taken(events: list[dict[str, Any]]) -> list[str]:
    """The README's notation: each started step, `-> choice` after a decision, `(skipped)` when `when` was false."""
    taken: list[list[str]] = []
    for event in events:
        if event["kind"] == "step.started":
            taken.append([event["step"]])
        elif event["kind"] == "decision":
            assert taken[-1][0] == event["step"]
            taken[-1].append(f"-> {event['data']['choice']}")
        elif event["kind"] == "step.skipped" and event["message"] == "condition false":
            assert taken[-1][0] == event["step"]
            taken[-1].append("(skipped)")
    return [" ".join(parts) for parts in taken]


def steps_done(events: list[dict[str, Any]]) -> list[str]:
    """The steps started and not skipped, in order."""
    skipped = {e["step"] for e in events if e["kind"] == "step.skipped"}
    return [e["step"] for e in events if e["kind"] == "step.started" and e["step"] not in skipped]


def test_every_bundled_playbook_validates(run_ir):
    bundled = [e for e in json.loads(run_ir("list", "--json").stdout) if e["origin"] == "bundled"]
    assert [e["id"] for e in bundled] == BUNDLED  # every file in playbooks/ is shipped, under its own name

    result = run_ir("validate")

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "".join(f"{path}: ok\n" for path in [e["path"] for e in bundled] + BUNDLED_SCENARIOS)


@pytest.mark.parametrize("playbook", BUNDLED)
def test_each_playbook_page_shows_its_current_graph_and_every_step(playbook, run_ir, catalog):
    page = (Path(__file__).resolve().parents[1] / "docs" / "playbooks" / f"{playbook}.md").read_text(encoding="utf-8")
    graph = run_ir("graph", playbook)
    assert graph.returncode == 0 and graph.stdout.strip() in page, "regenerate the page's graph with `ir graph`"
    steps = [s.id for s in catalog.load(playbook).playbook.steps]
    assert [f"(`{step}`) |" in page for step in steps] == [True] * len(steps)


@pytest.mark.parametrize("playbook", BUNDLED)
def test_show_renders_every_bundled_playbook(playbook, run_ir, catalog):
    result = run_ir("show", playbook, env={"COLUMNS": "200"})
    assert (result.returncode, result.stderr) == (0, "")
    model = catalog.load(playbook).playbook
    assert result.stdout.startswith(f"{model.title}  ({playbook} {model.version}, severity {model.severity})\n")


def test_the_readme_documents_each_answers_file_once():
    assert sorted(name for name, _ in SECTIONS) == [f.name for f in FILES]


@pytest.mark.parametrize("file", FILES, ids=_ids(FILES))
def test_a_branch_runs_to_the_end_along_the_path_in_the_readme(file, runs):
    run = runs[file.name]
    assert (run.result.returncode, run.result.stderr) == (0, ""), run.result.stderr
    incident = incident_id(run.result)
    assert run.result.stdout.endswith(f"Playbook finished for {incident}. Review with `ir timeline {incident}`; "
                                      f"close with `ir close {incident}`.\n")
    assert path_taken(run.events) == dict(SECTIONS)[file.name].splitlines()
    assert run.verify is not None and run.verify.returncode == 0
    assert run.verify.stdout.startswith(f"{incident}: timeline verifies: {len(run.events)} events, head ")


@pytest.mark.parametrize("file", FILES, ids=_ids(FILES))
def test_each_decision_records_the_answer_or_else_the_playbook_default(file, runs, catalog):
    run = runs[file.name]
    decisions = [e for e in run.events if e["kind"] == "decision"]
    assert decisions
    for event in decisions:
        step = step_at(catalog, run.playbook, event["step"])
        assert isinstance(step, DecisionStep)
        default = {"choice": step.default, "rationale": "not answered: the playbook's default"}
        answer = run.steps.get(event["step"], default)
        if isinstance(answer, str):
            answer = {"choice": answer}
        assert unsealed(event["data"]) == {"choice": answer["choice"], "label": step.choice(answer["choice"]).label,
                                 "rationale": answer.get("rationale")}
    assert set(run.steps) <= {e["step"] for e in run.events if e["kind"] == "step.started"}  # none left unused


@pytest.mark.parametrize("file", FILES, ids=_ids(FILES))
def test_the_integration_actions_are_those_of_the_notify_and_ticket_steps_taken(file, runs, catalog):
    run = runs[file.name]
    expected = []
    for path in steps_done(run.events):
        step = step_at(catalog, run.playbook, path)
        if isinstance(step, (NotifyStep, TicketStep)):
            expected.append((path, step.via, f"{step.kind}.{step.action}"))
    requested = [e for e in run.events if e["kind"] == "integration.requested"]
    assert [(e["step"], e["data"]["integration"], e["data"]["action"]) for e in requested] == expected

    for event in requested:  # each one shown and recorded at once, and not sent
        shown = run.events[run.events.index(event) + 1]
        assert (shown["kind"], shown["step"], unsealed(shown["data"])) == ("integration.dry_run", event["step"],
                                                                            unsealed(event["data"]))
        assert shown["message"].startswith("would ") and shown["message"] in run.result.stdout
    assert {e["kind"] for e in run.events if e["kind"].startswith("integration.")} <= {
        "integration.requested", "integration.dry_run"}


@pytest.mark.timeout(600)  # reads every run: it may wait for the other workers' or run the rest itself
def test_together_the_branches_take_every_choice_of_every_decision(runs, catalog):
    taken: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for run in runs.values():
        taken[run.playbook] |= {(e["step"], e["data"]["choice"]) for e in run.events if e["kind"] == "decision"}

    assert set(BUNDLED) == set().union(*(reached(catalog, playbook) for playbook in taken))
    for playbook, done in taken.items():
        assert [c for c in choices(catalog, playbook) if c not in done] == [], playbook


@pytest.mark.timeout(600)  # as above
def test_the_readme_coverage_table_is_what_the_runs_did(runs):
    taken: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for run in runs.values():
        for event in (e for e in run.events if e["kind"] == "decision"):
            taken[run.playbook, event["step"], event["data"]["choice"]].add(run.branch)

    assert {(p, s, c): {b.strip() for b in branches.split(",")} for p, s, c, branches in ROWS} == taken


SUPPLY_CHAIN = _branches("supply-chain--")
AFFECTED = [f for f in SUPPLY_CHAIN if f.name != "supply-chain--not-affected.yaml"]


@pytest.mark.parametrize("file", SUPPLY_CHAIN, ids=_ids(SUPPLY_CHAIN))
def test_supply_chain_opens_the_ticket_and_moves_it_through_the_phases(file, runs):
    run = runs[file.name]
    inputs = run.answers["inputs"]
    assert run.shown("ticket.create") == [
        f"would open the incident ticket in jira: Compromised vendor software: {inputs['vendor']} {inputs['product']}"]
    moves = [m.removeprefix("would move the incident ticket to ") for m in run.shown("ticket.transition")]
    if run.decision("affected") == "not_affected":
        assert (moves, run.shown("notify.create_channel")) == (["Triage", "Resolve"], [])
    else:
        assert moves == ["Triage", "Contain", "Eradicate", "Recover", "Resolve"]
        [channel] = run.shown("notify.create_channel")
        assert channel.startswith("would create the incident channel in slack and invite ")
        invited = channel.removeprefix("would create the incident channel in slack and invite ").split(", ")
        assert len(invited) == len(set(invited)) and "" not in invited, invited  # a role's fallback group once
        if "commander" not in run.answers.get("roles", {}):
            assert "@ir-oncall" in invited
        actions = [e["data"]["action"] for e in run.events if e["kind"] == "integration.requested"]
        assert actions.index("ticket.create") < actions.index("notify.create_channel")


def test_supply_chain_not_affected_documents_the_evidence_and_resolves_early(runs):
    run = runs["supply-chain--not-affected.yaml"]
    assert path_taken(run.events)[-5:] == ["affected -> not_affected", "document_not_affected",
                                           "not_affected_comment", "recheck_task", "not_affected_resolve"]
    assert run.shown("ticket.comment") == [
        "would comment on the incident ticket: Not affected: 41 installs found, none of an affected version "
        "(Windows 18.12.407, 18.12.416; macOS 18.11.1213, 18.12.402, 18.12.407, 18.12.416); no indicator hits "
        "since 2023-01-01. Evidence attached. Closing."]
    last = run.events[-1]
    assert (last["kind"], last["step"], unsealed(last["data"])) == ("step.completed", "not_affected_resolve",
                                                                     {"next": None})
    assert [e["data"]["milestone"] for e in run.events if e["kind"] == "milestone"] == ["detected"]
    assert {e["data"]["integration"] for e in run.events if e["kind"] == "integration.requested"} == {"jira"}


@pytest.mark.parametrize("file", AFFECTED, ids=_ids(AFFECTED))
def test_supply_chain_hands_on_keyboard_enters_the_intrusion_sub_playbook(file, runs, catalog):
    run = runs[file.name]
    escalate = catalog.load("supply-chain").playbook.step("escalate")
    assert isinstance(escalate, IncludeStep) and escalate.playbook == "intrusion"
    intrusion = [f"escalate/{s.id}" for s in catalog.load("intrusion").playbook.steps]
    inside = [p for p in steps_done(run.events) if p.startswith("escalate/")]

    if run.decision("hands_on_keyboard") == "hands_on_keyboard":
        assert (inside[0], inside[-1]) == (intrusion[0], intrusion[-1])
        done = steps_done(run.events)
        assert done[done.index("hands_on_keyboard") + 1] == "escalate"
        assert done[done.index(inside[-1]) + 1] == "contain"  # back in the main playbook
    else:
        assert "escalate" not in steps_done(run.events) and inside == []


KEV = _branches("exploited-vulnerability--")


@pytest.mark.parametrize(("days", "flag"), [(30, None), (200, "more than 90 days from today"),
                                            (-1, "which has already passed")])
def test_a_risk_acceptance_not_time_boxed_to_90_days_is_flagged(run_ir, isolated, days, flag):
    answers = _load(ANSWERS / "exploited-vulnerability--risk-acceptance.yaml")
    expiry = (datetime.now(UTC) + timedelta(days=days)).date().isoformat()
    answers["steps"]["risk_exception"]["exception_expiry"] = expiry
    (isolated / "answers.yaml").write_text(yaml.safe_dump(answers))
    result = run_ir("run", "exploited-vulnerability", "--dry-run", "--non-interactive", "--answers", "answers.yaml")
    assert result.returncode == 0, result.stderr
    [event] = [e for e in timeline(run_ir, incident_id(result)) if e["step"] == "exception_out_of_policy"
               and e["kind"] in ("note", "step.skipped")]
    if flag is None:
        assert (event["kind"], event["message"]) == ("step.skipped", "condition false")
    else:
        assert event["kind"] == "note"
        assert event["message"].startswith(f"OUT OF POLICY: the risk acceptance expires {expiry}, {flag}.")


@pytest.mark.parametrize("file", KEV, ids=_ids(KEV))
def test_exploited_vulnerability_closes_naming_the_fix_path_by_its_label(file, runs, catalog):
    run = runs[file.name]
    if "fix_path" not in steps_done(run.events):
        pytest.skip("this branch closes before any fix is chosen")
    fix_path = catalog.load("exploited-vulnerability").playbook.step("fix_path")
    assert isinstance(fix_path, DecisionStep)
    label = next(c.label for c in fix_path.choices if c.id == run.decision("fix_path"))
    assert run.shown("notify.status")[-1] == ("would update the pinned status message in the incident channel: "
                                              f"Closed ({label}). Follow-up tasks are linked on the ticket.")


@pytest.mark.parametrize("file", KEV, ids=_ids(KEV))
def test_exploited_vulnerability_ticket_is_due_on_the_kev_due_date_or_an_earlier_internal_sla(file, runs):
    run = runs[file.name]
    inputs = run.answers["inputs"]
    due = min(inputs["kev_due_date"], inputs.get("internal_due_date") or inputs["kev_due_date"])  # ISO dates
    assert run.shown("ticket.create") == [
        f"would open the incident ticket in jira: KEV: {', '.join(inputs['cve_ids'])} in {inputs['vendor']} "
        f"{inputs['product']} (due {due})"]


DETERMINED = [f for f in _branches("data-breach--") if "determination" in _load(f)["steps"]]


@pytest.mark.parametrize("file", DETERMINED, ids=_ids(DETERMINED))
def test_data_breach_deadlines_run_from_the_determination_and_nis2_from_awareness(file, runs):
    run = runs[file.name]
    day, time, zone = run.steps["determination"]["determined_at"].split()
    determined = datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=ZoneInfo(zone))
    due = determined.astimezone(UTC) + timedelta(hours=72)  # elapsed hours, across a change of the clocks too
    deadline = f"{due:%Y-%m-%d %H:%M} UTC (+00:00)"
    local_deadline = _shown(due.astimezone(ZoneInfo(zone)))  # with the offset the zone has on the day it falls due
    day, time, zone = run.answers["inputs"]["discovered_at"].split()
    discovered = datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=ZoneInfo(zone))
    hipaa = _shown(discovered + timedelta(days=60))  # 60 calendar days from the discovery, not the determination

    nis2 = f"{discovered.astimezone(UTC) + timedelta(hours=72):%Y-%m-%d %H:%M} UTC (+00:00)"  # from awareness

    [note] = [e["message"] for e in run.events if e["kind"] == "note" and e["step"] == "deadlines"]
    [comment] = [e["message"] for e in run.events
                 if e["kind"] == "integration.dry_run" and e["step"] == "deadlines_comment"]
    assert f"notification within 72 hours ({nis2})" in note  # NIS2 Art. 23: from awareness, not the determination
    assert f"notification 72 h: {nis2}." in comment
    if run.decision("breach_determination") == "personal_data_breach":
        assert f"within 72 hours of awareness: {deadline} ({local_deadline} local)" in note  # GDPR
        assert f"GDPR/UK GDPR 72 h: {deadline}." in comment
        assert f"60 calendar days after discovery ({_shown(discovered)}): {hipaa}." in note
        assert f"HIPAA 60 days from discovery: {hipaa}." in comment


def _shown(moment: datetime) -> str:
    """A time as the `timestamp` filter shows it."""
    offset = f"{moment:%z}"
    return f"{moment:%Y-%m-%d %H:%M %Z} ({offset[:3]}:{offset[3:]})"


BREACH = _branches("data-breach--")


@pytest.mark.parametrize("file", BREACH, ids=_ids(BREACH))
def test_data_breach_posts_the_incident_clocks_from_first_notice_before_any_determination(file, runs):
    run = runs[file.name]
    day, time, zone = run.answers["inputs"]["discovered_at"].split()
    discovered = datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    early, notification = (f"{discovered + timedelta(hours=h):%Y-%m-%d %H:%M} UTC (+00:00)" for h in (24, 72))
    nydfs = _shown((discovered + timedelta(hours=72)).astimezone(ZoneInfo("America/New_York")))

    [note] = [e["message"] for e in run.events if e["kind"] == "note" and e["step"] == "incident_clocks"]
    assert f"early warning within 24 hours of becoming aware: {early}; incident notification within 72 hours: " \
           f"{notification};" in note  # NIS2 Art. 23(4)
    assert f"no later than 24 hours after becoming aware of it: {early} at the latest" in note  # DORA
    assert "whether or not personal data is involved" in note and nydfs in note  # NYDFS 500.17(a), not gated
    done = [e["step"] for e in run.events if e["kind"] == "step.completed"]
    assert done.index("incident_clocks_comment") < done.index("contain")  # at declaration, before containment


@pytest.mark.parametrize("file", _branches("phishing-bec--"), ids=_ids(_branches("phishing-bec--")))
def test_phishing_payment_fraud_recalls_the_payment_before_anything_else(file, runs):
    done = steps_done(runs[file.name].events)
    if runs[file.name].decision("outcome") == "payment_fraud":
        assert done[done.index("outcome") + 1:done.index("outcome") + 3] == ["recall_payment", "declare"]  # PB-01
    else:
        assert "recall_payment" not in done




@pytest.mark.parametrize("file", FILES, ids=_ids(FILES))
def test_the_after_action_review_records_each_action_with_its_owner_and_due_date(file, runs):
    run = runs[file.name]
    if "aar" not in steps_done(run.events):
        pytest.skip("this branch closes without an after-action review")
    [note] = [e["message"] for e in run.events if e["kind"] == "note" and e["step"] == "aar/action_log"]
    actions = note.splitlines()
    assert actions and all(re.fullmatch(r"action: .+ \(owner .+, due \d{4}-\d{2}-\d{2}, [a-z]+\)", a)
                           for a in actions), note
    tasks = [e for e in run.events if e["kind"] == "integration.dry_run" and e["step"].startswith("aar/action_task_")]
    assert len(tasks) == len(actions)  # one task per action (AR-01)
    done = steps_done(run.events)
    assert done.index("aar/root_cause") < done.index("aar/action_items") < done.index("aar/release_hold")


SANITIZED = [f for f in _branches("compromised-account--") + _branches("data-breach--")]


@pytest.mark.parametrize("file", SANITIZED, ids=_ids(SANITIZED))
def test_status_updates_after_an_intrusion_escalation_keep_scope_off_chat_and_the_ticket(file, runs):
    run = runs[file.name]
    escalated = "escalate" in steps_done(run.events)
    after = False
    for event in run.events:
        after = after or (event["kind"] == "step.completed" and event["step"] == "escalate")
        if event["kind"] == "integration.dry_run" and re.search(r"/(post_sitrep|post_leadership|ticket_sitrep)$",
                                                                event["step"]):
            sanitized = "out-of-band bridge" in event["message"]
            assert sanitized == (escalated and after), (event["step"], event["message"])  # ST-02
