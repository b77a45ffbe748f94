"""`ir --help` and `ir list` stay light: they must not import the Slack or Jira clients, requests, sqlite3 or
pydantic. Each check runs the command in a fresh interpreter and reads `sys.modules` afterwards.
(Timings are measured by bench/startup.py, not asserted here: tests must not depend on the machine's speed.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """\
import json, sys
sys.argv = ["ir", *json.loads(sys.argv[1])]
from ir.script import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""
CLIENTS = ("slack_sdk", "jira", "requests", "sqlite3", "psycopg")


def imported_by(*args: str) -> set[str]:
    """The top-level modules, and ir's own modules, loaded by running `ir ARGS`."""
    result = subprocess.run([sys.executable, "-P", "-c", PROBE, json.dumps(args)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    modules = json.loads(result.stderr.rsplit("\nMODULES ", 1)[1])
    return {m for m in modules if "." not in m or m.startswith("ir.")}


@pytest.fixture
def playbook(write_playbook):
    return str(write_playbook("playbooks/light.yaml", """\
        id: light
        title: Light
        version: "1.0.0"
        steps:
          - {id: post, kind: notify, title: Post, phase: containment, message: hi}
          - {id: open, kind: ticket, action: create, summary: S, title: Open, phase: containment}
        """))


def test_help_imports_no_clients_and_no_pydantic():
    loaded = imported_by("--help")

    assert loaded.isdisjoint({*CLIENTS, "pydantic", "yaml", "jinja2", "rich"}), loaded
    assert {"ir.format.catalog", "ir.format.model", "ir.format.load"}.isdisjoint(loaded)


def test_list_imports_no_clients_and_not_the_playbook_model(playbook):
    loaded = imported_by("list")

    assert loaded.isdisjoint(CLIENTS), loaded
    assert {"ir.format.model", "ir.format.load", "ir.format.schema", "ir.format.templates"}.isdisjoint(loaded)
    assert "ir.integrations.registry" not in loaded  # its entry points (importlib.metadata) only once one is checked


def test_list_does_not_import_pydantic(playbook):
    """Typer 0.29 would import pydantic to coerce its --help option's None (ir.cli.app gives it a False default)."""
    assert "pydantic" not in imported_by("list")
    assert "pydantic" not in imported_by("list", "--json")


def test_validate_loads_the_integration_registry_but_not_the_clients(playbook):
    loaded = imported_by("validate", playbook)

    assert {"ir.format.load", "ir.integrations.slack", "ir.integrations.jira"} <= loaded
    assert loaded.isdisjoint(CLIENTS), loaded
    assert "ir.tabletop.scenario" not in loaded  # its models are built only when a scenario file is checked
