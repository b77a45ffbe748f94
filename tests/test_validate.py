"""`ir validate` on real files: a valid playbook, a corpus of broken ones, JSON output and usage errors.

Every broken file must give the whole error text (file:line:column, the path, what is wrong, the fix), exit 1, no
traceback, and write nothing anywhere.
"""

from __future__ import annotations

import json

import pytest

from ir.errors import InvalidPlaybook, Problem
from ir.format.load import load_text

VALID = """\
# yaml-language-server: $schema=playbook.schema.json
id: vendor-breach
title: Vendor breach
version: "1.2.0"
incident_title: "Breach at {{ inputs.vendor }}"
inputs:
  - id: vendor
    help: The vendor's legal name
    example: Acme Corp
  - id: severity
    type: choice
    choices: [low, medium, high, critical]
    default: high
roles:
  - id: commander
    title: Incident commander
steps:
  - id: scope
    kind: prompt
    title: Scope
    phase: detection-analysis
    role: commander
    questions:
      - id: affected_hosts
        type: list
  - id: contain
    kind: decision
    title: Contain {{ inputs.vendor }}?
    phase: containment
    question: Cut the vendor's access to {{ answers.affected_hosts | join(", ") }}?
    default: cut
    choices:
      - id: cut
        label: Cut access
        next: announce
      - id: watch
        label: Watch only
        next: end
  - id: announce
    kind: notify
    title: Announce
    phase: containment
    message: "{{ roles.commander }} cut {{ inputs.vendor }} off at {{ now | timestamp }}"
    when: steps.contain.decision == "cut"
  - id: ticket
    kind: ticket
    action: create
    title: Open the ticket
    phase: recovery
    summary: "{{ incident.id }}: {{ playbook.title }}"
    milestone: contained
"""


def check_failed(result, expected_stderr: str) -> None:
    """Exit 1, the whole expected error text on stderr, nothing on stdout, no traceback."""
    assert "Traceback" not in result.stdout + result.stderr
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == expected_stderr


def summary(problems: int) -> str:
    return f"1 of 1 file(s) invalid, {problems} problem(s)\n"


def test_a_valid_playbook_passes(run_ir, write_playbook, tree):
    path = write_playbook("vendor-breach.yaml", VALID)
    before = tree()

    result = run_ir("validate", str(path))

    assert (result.returncode, result.stdout, result.stderr) == (0, "vendor-breach.yaml: ok\n", "")
    assert tree() == before


# name -> (file content, expected stderr without the summary line, number of problems)
BROKEN: dict[str, tuple[str | bytes, str, int]] = {
    "bad-yaml": (
        'id: x\ntitle: [unclosed\nversion: "1.0.0"\n',
        "bad-yaml.yaml:3:8: invalid YAML: while parsing a flow sequence did not find expected ',' or ']'\n"
        "  fix: check the indentation and quoting on this line and the one before it\n",
        1,
    ),
    "tabs": (
        "id: x\nsteps:\n\t- id: a\n",
        "tabs.yaml:3:1: invalid YAML: a tab character; YAML indentation must use spaces\n"
        "  fix: indent with spaces, not tabs\n",
        1,
    ),
    "two-documents": (
        "id: a\n---\nid: b\n",
        "two-documents.yaml:2:1: invalid YAML: expected a single document in the stream but found another "
        "document\n  fix: check the indentation and quoting on this line and the one before it\n",
        1,
    ),
    "empty": (
        "",
        "empty.yaml:1:1: the file is empty\n"
        "  fix: a playbook is a YAML mapping with at least id, title, version and steps\n",
        1,
    ),
    "only-a-comment": (
        "# TODO: write the playbook\n",
        "only-a-comment.yaml:1:1: the file is empty\n"
        "  fix: a playbook is a YAML mapping with at least id, title, version and steps\n",
        1,
    ),
    "binary": (
        b"\x7fELF\x02\x01\x01\x00\x00\x00junk\xff\xfe",
        "binary.yaml:1:1: the file is binary, not YAML text\n  fix: point ir at a .yaml playbook file\n",
        1,
    ),
    "latin-1": (
        b"id: x\ntitle: Caf\xe9 breach\n",
        "latin-1.yaml:2: the file is not UTF-8 text\n  fix: save the file as UTF-8\n",
        1,
    ),
    "five-megabytes": (
        'id: big\ntitle: Big\nversion: "1.0.0"\ndescription: "' + "x" * 5_000_000 + '"\n',
        "five-megabytes.yaml:1:1: the file is 5.0 MB; playbooks are limited to 1 MB\n"
        "  fix: split it into smaller playbooks joined with `include` steps\n",
        1,
    ),
    "alias-bomb": (
        "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)),
        "alias-bomb.yaml:1:1: the document has more than 200000 values (or aliases that expand to that many)\n"
        "  fix: remove deeply nested aliases or split the playbook\n",
        1,
    ),
    "a-list": (
        "- id: x\n- id: y\n",
        "a-list.yaml:1:1: the document is a list, but a playbook is a mapping\n"
        "  fix: start the file with `id:`, `title:`, `version:` and `steps:`\n",
        1,
    ),
    "a-string": (
        "just some text\n",
        "a-string.yaml:1:1: the document is a text, but a playbook is a mapping\n"
        "  fix: start the file with `id:`, `title:`, `version:` and `steps:`\n",
        1,
    ),
    "duplicate-keys": (
        'id: x\ntitle: T\nversion: "1.0.0"\ntitle: Again\n',
        "duplicate-keys.yaml:4:1: duplicate key 'title'\n  fix: remove one of the two entries\n",
        1,
    ),
    "wrong-types": (
        "id: types\ntitle: T\nversion: 1.0\nsteps:\n"
        "  - id: a\n    kind: manual\n    title: A\n    phase: containment\n    instructions: do\n"
        "    checklist: nope\n    sla: 5 minutes\n",
        "wrong-types.yaml:3:10: version: should be a valid string (got float)\n"
        "  fix: quote the value to make it text\n"
        "wrong-types.yaml:10:16: steps[0].checklist: should be a valid list (got text)\n"
        "  fix: write a list: one `- item` a line, or `[a, b]`\n"
        "wrong-types.yaml:11:10: steps[0].sla: '5 minutes' is not valid here\n"
        "  fix: write a duration such as 15m, 4h, 1h30m or 2d\n",
        3,
    ),
    "unknown-keys": (
        'id: unk\ntitle: T\nversion: "1.0.0"\ndescripton: typo\nsteps:\n'
        "  - id: a\n    kind: manual\n    titel: A\n    phase: containment\n    instructions: do\n"
        "  - id: b\n    kind: manul\n    title: B\n    phase: containment\n",
        "unknown-keys.yaml:4:1: descripton: unknown field `descripton`\n"
        "  fix: did you mean `description`?\n"
        "unknown-keys.yaml:6:5: steps[0].title: `title` is required\n"
        "  fix: add `title:` here\n"
        "unknown-keys.yaml:8:5: steps[0].titel: unknown field `titel`\n"
        "  fix: did you mean `title`?\n"
        "unknown-keys.yaml:11:5: steps[1]: unknown step kind 'manul'\n"
        "  fix: did you mean `manual`?\n",
        4,
    ),
    "dangling-references": (
        'id: dangling\ntitle: T\nversion: "1.0.0"\nsteps:\n'
        "  - id: pick\n    kind: decision\n    title: Pick\n    phase: containment\n    question: Which?\n"
        "    choices:\n"
        "      - {id: one, label: One, next: nowhere}\n"
        "      - {id: two, label: Two, next: end}\n"
        "  - id: last\n    kind: note\n    title: Last\n    phase: recovery\n    message: done\n"
        "    next: nothing\n",
        "dangling-references.yaml:11:37: steps[0].choices[0].next: no step has id 'nowhere'\n"
        "  fix: use one of: pick, last, end\n"
        "dangling-references.yaml:18:11: steps[1].next: no step has id 'nothing'\n"
        "  fix: use one of: pick, last, end\n",
        2,
    ),
    "cycle": (
        'id: cycle\ntitle: T\nversion: "1.0.0"\nsteps:\n'
        "  - {id: a, kind: note, title: A, phase: containment, message: hi}\n"
        "  - {id: b, kind: note, title: B, phase: containment, message: hi, next: a}\n"
        "  - {id: c, kind: note, title: C, phase: recovery, message: hi}\n",
        "cycle.yaml:6:74: steps[1].next: the steps loop: a -> b -> a\n"
        "  fix: playbooks run forward; point `next` at a later step or `end`\n"
        "cycle.yaml:7:10: steps[2].id: step 'c' can never be reached\n"
        "  fix: point a `next` or a decision choice at it, or remove it\n",
        2,
    ),
    "undefined-variables": (
        'id: undefined\ntitle: T\nversion: "1.0.0"\ninputs:\n  - id: vendor\nsteps:\n'
        "  - id: a\n    kind: manual\n    title: Call {{ inputs.vendr }}\n    phase: containment\n"
        "    instructions: Ask {{ vendor }} about {{ answers.hosts }}\n",
        "undefined-variables.yaml:9:12: steps[0].title: inputs.vendr is never defined\n"
        "  fix: declare it under `inputs:` (defined: vendor)\n"
        "undefined-variables.yaml:11:19: steps[0].instructions: answers.hosts is never defined\n"
        "  fix: ask it in a `prompt` step's questions (none defined yet)\n"
        "undefined-variables.yaml:11:19: steps[0].instructions: template variable 'vendor' is not defined\n"
        "  fix: use one of: answers, incident, inputs, now, playbook, roles, steps (for example inputs.vendor)\n",
        3,
    ),
    "undefined-in-incident-title": (
        'id: titled\ntitle: T\nversion: "1.0.0"\nincident_title: "Breach at {{ inputs.vendor }}"\nsteps:\n'
        "  - {id: a, kind: note, title: A, phase: containment, message: hi}\n",
        "undefined-in-incident-title.yaml:4:17: incident_title: inputs.vendor is never defined\n"
        "  fix: declare it under `inputs:` (none defined yet)\n",
        1,
    ),
    "template-syntax": (
        'id: syntax\ntitle: T\nversion: "1.0.0"\nsteps:\n'
        "  - id: a\n    kind: note\n    title: A\n    phase: containment\n    message: 'Hi {{ inputs.x '\n",
        "template-syntax.yaml:9:14: steps[0].message: template syntax error: unexpected end of template, "
        "expected 'end of print statement'.\n  fix: fix the Jinja2 syntax\n",
        1,
    ),
    "unknown-filter-and-test": (
        'id: filters\ntitle: T\nversion: "1.0.0"\nsteps:\n'
        "  - id: a\n    kind: note\n    title: '{{ now | add_hour(1) }}'\n    phase: containment\n"
        "    message: '{% if now %}{{ now | timestmap }}{% endif %}'\n    when: now is bogus\n",
        "unknown-filter-and-test.yaml:7:12: steps[0].title: template syntax error: No filter named 'add_hour'.\n"
        "  fix: fix the Jinja2 syntax\n"
        "unknown-filter-and-test.yaml:9:14: steps[0].message: template syntax error: No filter named 'timestmap'.\n"
        "  fix: fix the Jinja2 syntax\n"
        "unknown-filter-and-test.yaml:10:11: steps[0].when: template syntax error: No test named 'bogus'.\n"
        "  fix: fix the Jinja2 syntax\n",
        3,
    ),
    "undeclared-role": (
        'id: roles\ntitle: T\nversion: "1.0.0"\nroles:\n  - {id: commander, title: IC}\nsteps:\n'
        "  - {id: a, kind: note, title: A, phase: containment, message: hi, role: scribe}\n",
        "undeclared-role.yaml:7:74: steps[0].role: role 'scribe' is not declared\n"
        "  fix: declare it under `roles:` (declared: commander)\n",
        1,
    ),
    "unknown-action": (
        'id: actions\ntitle: T\nversion: "1.0.0"\nsteps:\n'
        "  - {id: a, kind: ticket, action: page, summary: S, title: A, phase: containment}\n",
        "unknown-action.yaml:5:35: steps[0].action: 'page' is not allowed\n"
        "  fix: use 'create', 'task', 'comment', 'transition' or 'link'\n",
        1,
    ),
    "unknown-integration": (
        'id: integrations\ntitle: T\nversion: "1.0.0"\nsteps:\n'
        "  - {id: a, kind: notify, via: pagerduty, message: M, title: A, phase: containment}\n"
        "  - {id: b, kind: ticket, via: slack, action: comment, comment: C, title: B, phase: containment}\n",
        "unknown-integration.yaml:5:32: steps[0].via: no integration is named 'pagerduty'\n"
        "  fix: use one of: jira, slack\n"
        "unknown-integration.yaml:6:32: steps[1].via: integration 'slack' does not handle ticket steps\n"
        "  fix: use an integration that handles them: jira\n",
        2,
    ),
    "duplicate-step-ids": (
        'id: dupes\ntitle: T\nversion: "1.0.0"\nsteps:\n'
        "  - {id: a, kind: note, title: A, phase: containment, message: hi}\n"
        "  - {id: a, kind: note, title: B, phase: containment, message: hi}\n",
        "duplicate-step-ids.yaml:6:10: steps[1].id: duplicate id 'a' (first used at steps[0])\n"
        "  fix: give each one its own id\n",
        1,
    ),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_playbook_is_reported_with_its_position(name, run_ir, isolated, tree):
    content, expected, problems = BROKEN[name]
    path = isolated / f"{name}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    before = tree()

    result = run_ir("validate", path.name)

    check_failed(result, expected + summary(problems))
    assert tree() == before


def test_every_problem_in_a_file_is_reported_together(run_ir, write_playbook):
    write_playbook("many.yaml", """\
        id: many
        title: T
        version: "1.0.0"
        roles:
          - id: commander
            title: IC
        steps:
          - id: a
            kind: manual
            title: A {{ inputs.vendor }}
            phase: containment
            role: responder
            instructions: do {{ answrs.x }}
            next: nowhere
          - id: a
            kind: note
            title: B
            phase: containment
            message: hi
        """)

    result = run_ir("validate", "many.yaml")

    check_failed(result, (
        "many.yaml:10:12: steps[0].title: inputs.vendor is never defined\n"
        "  fix: declare it under `inputs:` (none defined yet)\n"
        "many.yaml:12:11: steps[0].role: role 'responder' is not declared\n"
        "  fix: declare it under `roles:` (declared: commander)\n"
        "many.yaml:13:19: steps[0].instructions: template variable 'answrs' is not defined\n"
        "  fix: use one of: answers, incident, inputs, now, playbook, roles, steps (for example inputs.answrs)\n"
        "many.yaml:14:11: steps[0].next: no step has id 'nowhere'\n"
        "  fix: use one of: a, a, end\n"
        "many.yaml:15:9: steps[1].id: duplicate id 'a' (first used at steps[0])\n"
        "  fix: give each one its own id\n"
    ) + summary(5))


INCLUDES = {
    "playbooks/first.yaml": 'id: first\ntitle: First\nversion: "1.0.0"\nsteps:\n'
                            "  - {id: go, kind: include, title: Go, phase: containment, playbook: second}\n",
    "playbooks/second.yaml": 'id: second\ntitle: Second\nversion: "1.0.0"\nsteps:\n'
                             "  - {id: back, kind: include, title: Back, phase: containment, playbook: first}\n",
}
CYCLE_FIX = "  fix: a playbook cannot include itself, directly or through others; remove one of the include steps\n"


@pytest.mark.parametrize("ref", ["first", "playbooks/first.yaml"])
def test_an_include_cycle_is_reported_where_it_starts(ref, run_ir, write_playbook, isolated, tree):
    for name, text in INCLUDES.items():
        write_playbook(name, text)
    before = tree()

    result = run_ir("validate", ref)

    check_failed(result, f"{isolated / 'playbooks/first.yaml' if ref == 'first' else ref}:5:70: steps[0].playbook: "
                         f"include cycle: first -> second -> first\n{CYCLE_FIX}" + summary(1))
    assert tree() == before


def test_a_playbook_that_includes_itself(run_ir, write_playbook):
    write_playbook("self.yaml", 'id: self\ntitle: Self\nversion: "1.0.0"\nsteps:\n'
                                "  - {id: again, kind: include, title: Again, phase: containment, playbook: self}\n")

    result = run_ir("validate", "self.yaml", env={"IR_PLAYBOOK_PATH": "."})

    check_failed(result, f"self.yaml:5:76: steps[0].playbook: include cycle: self -> self\n{CYCLE_FIX}"
                 + summary(1))


def test_a_default_or_example_that_is_not_of_its_type(run_ir, write_playbook):
    write_playbook("defaults.yaml", """\
        id: defaults
        title: Defaults
        version: "1.0.0"
        inputs:
          - {id: n, type: integer, default: notanumber}
          - {id: c, type: choice, choices: [a, b], default: z}
          - {id: mail, type: email, example: not-an-email}
          - {id: seen, type: datetime, example: "2026-03-29 14:02 America/Los_Angeles"}
        steps:
          - id: ask
            kind: prompt
            title: Ask
            phase: detection-analysis
            questions: [{id: hosts, type: integer, default: many}]
        """)

    result = run_ir("validate", "defaults.yaml")

    check_failed(result, "defaults.yaml:5:37: inputs[0].default: default 'notanumber' is not a valid integer: a whole "
                         "number is needed\n  fix: give a value of type integer, or remove `default:`\n"
                         "defaults.yaml:6:53: inputs[1].default: default 'z' is not a valid choice: choose one of: "
                         "a, b\n"
                         "  fix: give a value of type choice, or remove `default:`\n"
                         "defaults.yaml:7:38: inputs[2].example: example 'not-an-email' is not a valid email: "
                         "'not-an-email' is not an e-mail address\n  fix: give a value of type email, or remove "
                         "`example:`\n"
                         "defaults.yaml:14:53: steps[0].questions[0].default: default 'many' is not a valid integer: "
                         "a whole number is needed\n  fix: give a value of type integer, or remove `default:`\n"
                         + summary(4))


def test_an_include_of_an_unknown_or_broken_playbook(run_ir, write_playbook, isolated):
    write_playbook("playbooks/broken.yaml", "id: broken\ntitle: [\n")
    write_playbook("main.yaml", 'id: main\ntitle: Main\nversion: "1.0.0"\nsteps:\n'
                                "  - {id: one, kind: include, title: One, phase: containment, playbook: missing}\n"
                                "  - {id: two, kind: include, title: Two, phase: containment, playbook: broken}\n")

    result = run_ir("validate", "main.yaml")

    check_failed(result, (
        "main.yaml:5:72: steps[0].playbook: no playbook with id 'missing'\n"
        "  fix: run `ir list` to see the playbooks ir can find\n"
        f"main.yaml:6:72: steps[1].playbook: the included playbook 'broken' ({isolated}/playbooks/broken.yaml) is "
        "invalid\n"
        "  fix: run `ir validate broken`\n"
    ) + summary(2))


def test_valid_and_invalid_files_together(run_ir, write_playbook):
    write_playbook("good.yaml", VALID)
    write_playbook("bad.yaml", "id: bad\n")

    result = run_ir("validate", "good.yaml", "bad.yaml")

    assert (result.returncode, result.stdout) == (1, "good.yaml: ok\n")
    assert result.stderr == (
        "bad.yaml:1:1: title: `title` is required\n  fix: add `title:` here\n"
        "bad.yaml:1:1: version: `version` is required\n  fix: add `version:` here\n"
        "bad.yaml:1:1: steps: `steps` is required\n  fix: add `steps:` here\n"
        "1 of 2 file(s) invalid, 3 problem(s)\n"
    )


def test_json_output(run_ir, write_playbook):
    write_playbook("good.yaml", VALID)
    write_playbook("bad.yaml", VALID.replace("next: announce", "next: announec"))

    result = run_ir("validate", "--json", "good.yaml", "bad.yaml")

    assert (result.returncode, result.stderr) == (1, "")
    assert json.loads(result.stdout) == [
        {"file": "good.yaml", "valid": True, "problems": []},
        {"file": "bad.yaml", "valid": False, "problems": [{
            "message": "no step has id 'announec'", "file": "bad.yaml", "line": 35, "column": 15,
            "path": "steps[1].choices[0].next", "hint": "use one of: scope, contain, announce, ticket, end"}]},
    ]


def test_json_output_of_a_valid_file_exits_0(run_ir, write_playbook):
    write_playbook("good.yaml", VALID)

    result = run_ir("validate", "--json", "good.yaml")

    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == [{"file": "good.yaml", "valid": True, "problems": []}]


@pytest.mark.parametrize(("args", "message"), [
    (["--bogus"], "Error: No such option: --bogus"),
    (["missing/file.yaml"], "error: no playbook file at missing/file.yaml\n  fix: check the path\n"),
    (["no-such-id"], "error: no playbook with id 'no-such-id'\n  fix: run `ir list`; known ids: "),
])
def test_usage_errors_exit_2(args, message, run_ir, tree):
    before = tree()

    result = run_ir("validate", *args)

    assert (result.returncode, result.stdout) == (2, "")
    assert message in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert tree() == before


def test_the_library_raises_every_problem_with_its_position():
    raw = b'id: lib\ntitle: T\nversion: "1.0.0"\nsteps:\n  - {id: a, kind: note, title: A, phase: nope, message: m}\n'

    with pytest.raises(InvalidPlaybook) as caught:
        load_text(raw, "lib.yaml")

    assert caught.value.problems == [Problem(
        "'nope' is not allowed", "lib.yaml", 5, 42, "steps[0].phase",
        "use 'preparation', 'detection-analysis', 'containment', 'eradication', 'recovery' or 'post-incident'")]


def test_the_library_loads_a_valid_playbook():
    loaded = load_text(VALID.encode(), "vendor-breach.yaml")

    assert loaded.playbook.id == "vendor-breach"
    assert [s.kind for s in loaded.playbook.steps] == ["prompt", "decision", "notify", "ticket"]
    assert loaded.source.where(("steps", 1, "choices", 0, "next")) == (35, 15)



def test_an_include_that_passes_an_input_the_playbook_does_not_declare_or_misses_one_it_needs(run_ir, write_playbook):
    write_playbook("playbooks/sub.yaml", 'id: sub\ntitle: Sub\nversion: "1.0.0"\n'
                                         "inputs: [{id: what, type: string}, {id: how, type: string, default: x}]\n"
                                         "steps:\n  - {id: log, kind: note, title: Log, phase: containment, "
                                         'message: "{{ inputs.what }}"}\n')
    write_playbook("main.yaml", 'id: main\ntitle: Main\nversion: "1.0.0"\nsteps:\n'
                                "  - id: one\n    kind: include\n    title: One\n    phase: containment\n"
                                "    playbook: sub\n    inputs:\n      what: a\n      colour: red\n"
                                "  - {id: two, kind: include, title: Two, phase: containment, playbook: sub, "
                                "inputs: {how: y}}\n")

    result = run_ir("validate", "main.yaml")

    check_failed(result, (
        "main.yaml:12:15: steps[0].inputs.colour: playbook 'sub' has no input 'colour'\n"
        "  fix: its inputs: what, how\n"
        "main.yaml:13:85: steps[1].inputs: playbook 'sub' needs input 'what'\n"
        "  fix: add `what:` under this step's `inputs:`\n"
    ) + summary(2))


def test_bounds_are_checked_for_their_type_their_order_and_their_form(run_ir, write_playbook):
    write_playbook("bounds.yaml", """\
        id: bounds
        title: Bounds
        version: "1.0.0"
        inputs:
          - {id: name, type: string, max: 3}
          - {id: n, type: integer, min: 5, max: 2}
          - {id: k, type: integer, max: "hosts"}
        steps:
          - {id: log, kind: note, title: Log, phase: detection-analysis, message: x}
        """)

    result = run_ir("validate", "bounds.yaml")

    check_failed(result, "bounds.yaml:5:5: inputs[0]: `min` and `max` only apply to integer variables, not string\n"
                         "bounds.yaml:6:5: inputs[1]: `min` (5) is larger than `max` (2)\n"
                         "bounds.yaml:7:5: inputs[2]: `max` 'hosts' is neither a whole number nor one template "
                         'expression such as "{{ answers.hosts_installed }}"\n' + summary(3))


def test_examples_out_of_bounds_and_bounds_naming_unknown_values_are_refused(run_ir, write_playbook):
    write_playbook("bounds.yaml", """\
        id: bounds
        title: Bounds
        version: "1.0.0"
        inputs:
          - {id: m, type: integer, min: 0, example: -1}
          - {id: k, type: integer, max: "{{ answers.hosts }}"}
        steps:
          - id: ask
            kind: prompt
            title: Ask
            phase: detection-analysis
            questions: [{id: hosts, type: integer, max: "{{ answers.installed }}", default: 3}]
        """)

    result = run_ir("validate", "bounds.yaml")

    check_failed(result, "bounds.yaml:5:45: inputs[0].example: example -1 is not a valid integer: -1 is less than the "
                         "minimum, 0\n  fix: give a value of type integer, or remove `example:`\n"
                         "bounds.yaml:6:33: inputs[1].max: answers.hosts is never defined\n"
                         "  fix: ask it in a `prompt` step's questions (none defined yet)\n"
                         "bounds.yaml:12:49: steps[0].questions[0].max: answers.installed is never defined\n"
                         "  fix: ask it in a `prompt` step's questions (defined: hosts)\n" + summary(3))
