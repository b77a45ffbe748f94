"""Discovery (bundled, ./playbooks, IR_PLAYBOOK_PATH) and the read-only commands: list, show, schema, graph."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest
import yaml

from ir.format.catalog import Catalog
from ir.format.schema import playbook_schema as schema_of
from ir.integrations.registry import capabilities

from conftest import BUNDLED_SCENARIOS

SMALL = """\
id: {id}
title: {title}
version: "1.0.0"
tags: [test]
steps:
  - {{id: only, kind: note, title: Only, phase: containment, message: hi}}
"""

BRANCHING = """\
id: branching
title: Branching
version: "0.3.0"
inputs:
  - id: vendor
    example: Acme Corp
  - id: region
    default: eu-west-1
    required: false
steps:
  - id: triage
    kind: manual
    title: Triage "{{ inputs.vendor }}"
    phase: detection-analysis
    instructions: Look at the alerts.
  - id: contain
    kind: decision
    title: Contain?
    phase: containment
    question: Cut access?
    choices:
      - {id: cut, label: Cut access, next: announce}
      - {id: watch, label: Watch | wait, next: end}
  - id: announce
    kind: notify
    title: Announce
    phase: containment
    message: Access cut.
    on_failure: review
  - id: review
    kind: include
    title: Review
    phase: post-incident
    playbook: small-one
"""


def bundled_ids() -> list[str]:
    return [e.id for e in Catalog(capabilities).entries().values() if e.origin == "bundled"]


def test_list_shows_each_playbook_and_its_origin(run_ir, write_playbook, isolated, tmp_path, tree):
    write_playbook("playbooks/local.yaml", SMALL.format(id="local-one", title="Local one"))
    write_playbook("playbooks/broken.yaml", "title: [\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "team.yml").write_text(SMALL.format(id="team-one", title="Team one"))
    before = tree()

    result = run_ir("list", env={"IR_PLAYBOOK_PATH": str(extra)})

    assert (result.returncode, result.stderr) == (0, "")
    assert tree() == before
    playbooks, scenarios = result.stdout.split("\n\n")
    lines = playbooks.splitlines()
    assert lines[0].split() == ["ID", "VERSION", "TITLE", "SOURCE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert scenarios.splitlines()[0].split() == ["SCENARIO", "PLAYBOOK", "TITLE", "SOURCE"]
    assert scenarios.splitlines()[1].split()[:2] == ["3cx-2023", "supply-chain"]
    assert set(rows) == {*bundled_ids(), "local-one", "broken", "team-one"}
    assert rows["local-one"].split()[1:5] == ["1.0.0", "Local", "one", "local:"]
    assert rows["local-one"].endswith(f"  local: {isolated}/playbooks/local.yaml")
    assert rows["team-one"].endswith(f"  IR_PLAYBOOK_PATH: {extra}/team.yml")
    assert f"(unreadable: run `ir validate {isolated}/playbooks/broken.yaml`)" in rows["broken"]
    for bundled in bundled_ids():
        assert rows[bundled].endswith("  bundled")


def test_list_json(run_ir, write_playbook, isolated):
    write_playbook("playbooks/local.yaml", SMALL.format(id="local-one", title="Local one"))

    result = run_ir("list", "--json")

    assert (result.returncode, result.stderr) == (0, "")
    entries = {e["id"]: e for e in json.loads(result.stdout)}
    assert entries["local-one"] == {"id": "local-one", "title": "Local one", "version": "1.0.0", "tags": ["test"],
                                    "origin": "local", "path": f"{isolated}/playbooks/local.yaml", "error": None,
                                    "overrides": None}
    assert {e["origin"] for e in entries.values()} <= {"bundled", "local"}


def test_a_local_playbook_overrides_a_bundled_one_with_the_same_id(run_ir, write_playbook, isolated):
    if not bundled_ids():
        pytest.skip("no bundled playbooks to override yet")
    target = bundled_ids()[0]
    write_playbook("playbooks/ours.yaml", SMALL.format(id=target, title="Our own"))

    listed = run_ir("list")
    shown = run_ir("show", "--json", target)

    row = next(line for line in listed.stdout.splitlines() if line.startswith(f"{target} "))
    assert row.split()[1:3] == ["1.0.0", "Our"]
    assert row.endswith(f"local: {isolated}/playbooks/ours.yaml (overrides bundled)")
    assert json.loads(shown.stdout)["title"] == "Our own"


def test_the_playbook_path_overrides_local_playbooks_in_order(run_ir, write_playbook, tmp_path, isolated):
    write_playbook("playbooks/a.yaml", SMALL.format(id="shared", title="Local"))
    first, second = tmp_path / "first", tmp_path / "second"
    for directory, title in ((first, "First"), (second, "Second")):
        directory.mkdir()
        (directory / "a.yaml").write_text(SMALL.format(id="shared", title=title))

    result = run_ir("list", "--json", env={"IR_PLAYBOOK_PATH": os.pathsep.join([str(first), str(second)])})
    listed = run_ir("list", env={"IR_PLAYBOOK_PATH": str(first)})

    entry = next(e for e in json.loads(result.stdout) if e["id"] == "shared")
    assert (entry["title"], entry["origin"], entry["overrides"]) == ("Second", "IR_PLAYBOOK_PATH", f"{first}/a.yaml")
    assert f"IR_PLAYBOOK_PATH: {first}/a.yaml (overrides {isolated}/playbooks/a.yaml)" in listed.stdout
    assert "overrides bundled" not in listed.stdout


def test_validate_without_arguments_checks_every_playbook_and_scenario_found(run_ir, write_playbook, isolated):
    write_playbook("playbooks/local.yaml", SMALL.format(id="local-one", title="Local one"))
    write_playbook("scenarios/drill.yaml", 'id: drill\ntitle: Drill\nversion: "1.0.0"\nplaybook: local-one\n')

    result = run_ir("validate")

    assert (result.returncode, result.stderr) == (0, "")
    # The paths `ir list` reports (the installed package's bundled files, as the subprocess sees them), then the
    # bundled scenarios and those in ./scenarios.
    paths = [e["path"] for e in json.loads(run_ir("list", "--json").stdout)]
    paths += [*map(str, BUNDLED_SCENARIOS), str(isolated / "scenarios" / "drill.yaml")]
    assert result.stdout == "".join(f"{path}: ok\n" for path in paths)
    assert any(path.endswith("playbooks/local.yaml") for path in paths)


def test_show_json_is_the_parsed_model_with_defaults(run_ir, write_playbook, tree):
    write_playbook("playbooks/small.yaml", SMALL.format(id="small-one", title="Small"))
    write_playbook("branching.yaml", BRANCHING)
    before = tree()

    result = run_ir("show", "--json", "branching.yaml")

    assert (result.returncode, result.stderr) == (0, "")
    assert tree() == before
    shown = json.loads(result.stdout)
    assert shown["inputs"] == [
        {"id": "vendor", "type": "string", "label": None, "help": None, "required": True, "default": None,
         "example": "Acme Corp", "choices": None, "min": None, "max": None},
        {"id": "region", "type": "string", "label": None, "help": None, "required": False, "default": "eu-west-1",
         "example": None, "choices": None, "min": None, "max": None},
    ]
    assert (shown["severity"], shown["description"], shown["roles"]) == ("medium", "", [])
    announce = shown["steps"][2]
    assert {key: announce[key] for key in ("id", "kind", "role", "next", "on_failure", "sla", "via", "action",
                                           "channel", "message", "invite")} == {
        "id": "announce", "kind": "notify", "role": None, "next": None, "on_failure": "review", "sla": None,
        "via": "slack", "action": "post", "channel": None, "message": "Access cut.", "invite": []}


def test_show_prints_the_steps_by_phase(run_ir, write_playbook):
    write_playbook("playbooks/small.yaml", SMALL.format(id="small-one", title="Small"))
    write_playbook("playbooks/branching.yaml", BRANCHING)

    result = run_ir("show", "branching", env={"COLUMNS": "100"})

    assert (result.returncode, result.stderr) == (0, "")
    out = result.stdout
    assert out.startswith("Branching  (branching 0.3.0, severity medium)\n")
    positions = [out.index(text) for text in ("detection-analysis", "1. Triage", "containment", "2. Contain?",
                                              "- Watch | wait -> end", "3. Announce", "post-incident", "4. Review",
                                              "runs playbook small-one")]
    assert positions == sorted(positions)
    assert "e.g. Acme Corp" in out and "eu-west-1" in out


def test_show_of_an_invalid_playbook_reports_its_problems(run_ir, write_playbook):
    write_playbook("bad.yaml", SMALL.format(id="bad", title="Bad").replace("phase: containment", "phase: later"))

    result = run_ir("show", "bad.yaml")

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "bad.yaml:6:48: steps[0].phase: 'later' is not allowed\n"
        "  fix: use 'preparation', 'detection-analysis', 'containment', 'eradication', 'recovery' or 'post-incident'\n")


@pytest.mark.parametrize("command", ["show", "graph"])
def test_an_unknown_id_is_a_usage_error(command, run_ir):
    result = run_ir(command, "no-such-playbook")

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: no playbook with id 'no-such-playbook'\n  fix: run `ir list`; known ids:")


def test_graph_is_a_mermaid_flowchart_by_phase(run_ir, write_playbook, tree):
    write_playbook("playbooks/small.yaml", SMALL.format(id="small-one", title="Small"))
    write_playbook("branching.yaml", BRANCHING)
    before = tree()

    result = run_ir("graph", "branching.yaml")

    assert (result.returncode, result.stderr) == (0, "")
    assert tree() == before
    assert result.stdout == """\
flowchart TD
  subgraph _detection_analysis["detection-analysis"]
    triage["Triage #quot;{{ inputs.vendor }}#quot;"]
  end
  subgraph _containment["containment"]
    contain{"Contain?"}
    announce>"Announce"]
  end
  subgraph _post_incident["post-incident"]
    review[["Review (small-one)"]]
  end
  _end((end))
  triage --> contain
  contain -->|"Cut access"| announce
  contain -->|"Watch | wait"| _end
  announce -->|"on failure"| review
  review --> _end
"""


def playbook_schema() -> dict:
    return schema_of({name: c.settings for name, c in capabilities().items()})


def test_schema_is_a_valid_json_schema_that_matches_the_loader(run_ir, tmp_path):
    result = run_ir("schema")

    assert (result.returncode, result.stderr) == (0, "")
    schema = json.loads(result.stdout)
    assert schema == playbook_schema()
    assert schema["$defs"]["SlackSettings"]["properties"]["channels"]["description"].startswith(
        "The channels playbooks post to (`channel:`), each mapped to your workspace's name for it: ")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    # A field's docstring in runner/format/model.py is its description, inherited ones too: what an editor shows on hover.
    assert (schema["properties"]["id"]["description"], schema["$defs"]["ManualStep"]["properties"]["phase"]
            ["description"]) == ("How the playbook is named on the command line (`ir run <id>`); lowercase letters, "
                                 "digits and dashes.", "The incident-response phase the step belongs to.")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(BRANCHING)
    assert list(validator.iter_errors(good)) == []
    bad = {**good, "descripton": "typo"}
    assert [e.message for e in validator.iter_errors(bad)] == [
        "Additional properties are not allowed ('descripton' was unexpected)"]
    overrides = {**good, "integrations": {"jira": {"project": "SEC"}, "slack": {"chanel_template": "x"}}}
    assert [e.message for e in validator.iter_errors(overrides)] == [
        "Additional properties are not allowed ('chanel_template' was unexpected)"]


def test_schema_to_a_file_for_the_editor_modeline(run_ir, write_playbook, isolated):
    result = run_ir("schema", "-o", "playbook.schema.json")
    write_playbook("small.yaml", "# yaml-language-server: $schema=playbook.schema.json\n"
                   + SMALL.format(id="small-one", title="Small"))

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert json.loads((isolated / "playbook.schema.json").read_text()) == playbook_schema()
    assert run_ir("validate", "small.yaml").returncode == 0


def test_help_version_and_usage(run_ir):
    helped, version, bare, unknown = run_ir("--help"), run_ir("--version"), run_ir(), run_ir("frobnicate")

    assert (helped.returncode, helped.stderr) == (0, "")
    for command in ("list", "show", "validate", "schema", "graph"):
        assert f"\n  {command} " in helped.stdout
    assert (version.returncode, version.stdout) == (0, "ir 0.2.0\n")
    assert (bare.returncode, bare.stdout) == (2, "")
    assert bare.stderr.startswith("Usage: ir [OPTIONS] COMMAND [ARGS]...")
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr.endswith("Error: No such command 'frobnicate'.\n")
    for result in (helped, version, bare, unknown):
        assert "Traceback" not in result.stderr
