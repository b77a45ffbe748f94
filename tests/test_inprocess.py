"""`run_ir` runs the command line inside the test's process (tests/inprocess.py): what it reads back is what the
console script in a subprocess gives, byte for byte, for each way a command ends and each stream it uses. If the
two drifted apart, every test that reads `run_ir` would be checking something no user runs."""

from __future__ import annotations

import json

import pytest

from runs import DEMO, SUB


def incidents(run_ir) -> set[str]:
    return {i["id"] for i in json.loads(run_ir("incidents", "--json").stdout)}


@pytest.mark.parametrize(("args", "input"), [
    (("--help",), None),  # Typer's help, to a pipe
    (("validate", "playbooks/demo.yaml"), None),  # exit 0
    (("validate", "playbooks/broken.yaml"), None),  # exit 2, file:line on standard error
    (("incidents", "--status", "nope"), None),  # a usage error
    (("nosuchcommand",), None),  # Typer's own usage error
    (("run", "demo", "--dry-run"), "ACME\n\n2\n"),  # prompts read from standard input, then its end: paused
    (("timeline", "IR-NOPE"), None),  # an error naming what is missing
])
def test_a_command_in_process_gives_what_the_console_script_gives(run_ir, write_playbook, args, input):
    write_playbook("playbooks/demo.yaml", DEMO)
    write_playbook("playbooks/sub.yaml", SUB)
    write_playbook("playbooks/broken.yaml", DEMO.replace("kind: prompt", "kind: promtp"))
    here = run_ir(*args, input=input)
    before = incidents(run_ir)
    there = run_ir(*args, input=input, process=True)
    if args[0] == "run":  # the second run opens an incident of its own: compare with its id in place of the first's
        [first], [second] = before, incidents(run_ir) - before
        there.stdout, there.stderr = there.stdout.replace(second, first), there.stderr.replace(second, first)
    assert (here.returncode, here.stdout, here.stderr) == (there.returncode, there.stdout, there.stderr)
    assert here.stdout or here.stderr  # something was compared


def test_an_export_to_standard_output_is_the_same_bytes_in_process(run_ir, write_playbook):
    write_playbook("playbooks/demo.yaml", DEMO)
    write_playbook("playbooks/sub.yaml", SUB)
    incident = run_ir("run", "demo", "--dry-run", "--non-interactive").stdout.split()[1].rstrip(":")
    for fmt in ("json", "csv", "markdown"):
        here = run_ir("export", incident, "--format", fmt)
        there = run_ir("export", incident, "--format", fmt, process=True)
        assert (here.returncode, here.stdout, here.stderr) == (0, there.stdout, there.stderr), fmt
        assert incident in here.stdout
