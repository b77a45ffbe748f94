"""A third-party integration, installed the way pip installs one: a module and its `*.dist-info` (METADATA and an
`entry_points.txt` in group `ir.integrations`) on the `ir` process's PYTHONPATH. It gets its own ir.toml table
and environment variable, its steps validate and run, its secret is never written or printed; a broken plugin is
one clear error."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from runs import incident_id

PAGER = '''\
"""Pages an on-call service; for the tests, a page is a line in the file `log`."""

import hashlib
import json

from pydantic import BaseModel, ConfigDict

from ir.integrations.registry import EnvVar, Finding, NotConfigured, Refused


class PagerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = "PDEFAULT"
    log: str = "pages.log"


class Pager:
    name = "pager"
    handles = frozenset({"notify"})
    settings_model = PagerSettings
    environment = {"PAGER_TOKEN": EnvVar("the pager's API token")}

    def connect(self, settings, env):
        if "PAGER_TOKEN" not in env:
            raise NotConfigured("set PAGER_TOKEN")
        return Connection(settings, env["PAGER_TOKEN"])


class Connection:
    def __init__(self, settings, token):
        self.settings, self.token = settings, token

    def perform(self, item, target):
        if item.payload["message"] == "refuse":
            raise Refused(f"token {self.token} may not page {self.settings.service}")
        page = {"service": self.settings.service, "message": item.payload["message"],
                "token_sha256": hashlib.sha256(self.token.encode()).hexdigest()}
        with open(self.settings.log, "a") as log:
            log.write(json.dumps(page) + "\\n")
        return {"page": item.key}

    def reconcile(self, item, target):
        return None

    def check(self):
        return [Finding(True, f"pager: service {self.settings.service}")]


integration = Pager()
'''

PLAYBOOK = """\
id: paged
title: Paged
version: "1.0.0"
integrations:
  pager: {service: PSEC}
steps:
  - {id: page, kind: notify, via: pager, title: Page, phase: detection-analysis, message: "Declared {{ incident.id }}"}
  - {id: again, kind: notify, via: pager, title: Page again, phase: containment, message: refuse}
"""
TOKEN = "pgr-0123456789-very-secret"


def install(site: Path, dist: str, modules: dict[str, str], entry_points: str) -> dict[str, str]:
    """A distribution as pip leaves it in site-packages; the environment that puts it on the path."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[ir.integrations]\n{entry_points}\n")
    for name, text in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(text))
    return {"PYTHONPATH": str(site)}


@pytest.fixture
def pager(tmp_path: Path, isolated: Path) -> dict[str, str]:
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "paged.yaml").write_text(PLAYBOOK)
    return install(tmp_path / "site", "ir-pager", {"ir_pager": PAGER}, "pager = ir_pager:integration")


def test_a_plugin_has_its_table_its_secret_and_its_steps(run_ir, pager, isolated, tmp_path):
    (isolated / "ir.toml").write_text('[pager]\nservice = "PMAIN"\nlog = "paged.log"\n\n[jira]\nproject = "SEC"\n')
    env = {**pager, "PAGER_TOKEN": TOKEN}

    listed = run_ir("integrations", "list", env=env)
    assert (listed.returncode, listed.stderr) == (0, "")
    assert listed.stdout[listed.stdout.index("pager:"):listed.stdout.index("slack:")] == (
        "pager: notify (entry point `pager = ir_pager:integration` of ir-pager 1.0)\n"
        "  [pager] in ir.toml: service, log\n"
        "  PAGER_TOKEN: the pager's API token (secret)\n")
    assert run_ir("validate", "paged", env=env).stdout == f"{isolated}/playbooks/paged.yaml: ok\n"
    checked = run_ir("integrations", "check", env=env)
    assert "✓ pager: service PMAIN" in checked.stdout.splitlines()

    result = run_ir("run", "paged", "--non-interactive", env=env)
    assert result.returncode == 0, result.stderr
    incident = incident_id(result)
    pages = [json.loads(line) for line in (isolated / "paged.log").read_text().splitlines()]
    assert pages == [{"service": "PSEC", "message": f"Declared {incident}",  # the playbook overrides ir.toml
                      "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]
    assert "(token [secret] may not page PSEC); what goes to its" in result.stdout

    outbox = json.loads(run_ir("outbox", incident, "--json", env=env).stdout)
    assert [(i["integration"], i["status"], i["error"]) for i in outbox] == [
        ("pager", "done", None), ("pager", "failed", "token [secret] may not page PSEC")]
    shown = [result, checked, listed, run_ir("timeline", incident, "--json", env=env),
             run_ir("export", incident, "--format", "json", env=env), run_ir("flush", incident, env=env)]
    assert all(TOKEN not in r.stdout + r.stderr for r in shown)
    written = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert any(p.name == "ir.db" for p in written)
    assert [p for p in written if TOKEN.encode() in p.read_bytes()] == []


def test_a_mistake_in_a_plugins_settings_is_named_at_its_line(run_ir, pager, isolated):
    (isolated / "ir.toml").write_text('[pager]\nservce = "PMAIN"\nlog = 5\n')
    toml = isolated / "ir.toml"

    result = run_ir("integrations", "check", env=pager)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"{toml}:2: pager.servce: unknown setting `servce`\n  fix: did you mean `service`?\n"
        f"{toml}:3: pager.log: Input should be a valid string\n"
        "  fix: see the [pager] settings: `ir integrations list`\n")

    (isolated / "playbooks" / "paged.yaml").write_text(PLAYBOOK.replace("{service: PSEC}", "{servce: PSEC}"))
    result = run_ir("validate", "paged", env=pager)
    assert (result.returncode, result.stderr) == (1, (
        f"{isolated}/playbooks/paged.yaml:5:11: integrations.pager.servce: unknown field `servce`\n"
        "  fix: did you mean `service`?\n1 of 1 file(s) invalid, 1 problem(s)\n"))
    without = run_ir("validate", "paged")  # the plugin is not installed here
    assert without.stderr.splitlines()[:2] == [
        f"{isolated}/playbooks/paged.yaml:5:3: integrations.pager: unknown field `pager`", "  fix: allowed here: jira, slack"]


@pytest.mark.parametrize(("module", "problem"), [
    ("import ir_nowhere\n", "cannot be loaded: ModuleNotFoundError: No module named 'ir_nowhere'"),
    ("integration = object()\n", "is not an integration: it has no `name`, `handles`, `settings_model`, "
                                 "`environment`, `connect`"),
    (PAGER.replace('    model_config = ConfigDict(extra="forbid")\n', ""),
     'is not an integration: its `settings_model` accepts unknown settings: set `extra="forbid"` so that a typo '
     "is reported"),
], ids=["import-error", "not-an-integration", "settings-accept-anything"])
def test_a_broken_plugin_is_one_clear_error(run_ir, tmp_path, isolated, module, problem):
    env = install(tmp_path / "site", "ir-broken", {"ir_broken": module}, "broken = ir_broken:integration")
    (isolated / "playbooks").mkdir()
    (isolated / "playbooks" / "paged.yaml").write_text(PLAYBOOK.replace("pager", "slack"))
    loaded = "the integration entry point" if "loaded" in problem else "the entry point"
    expected = (f"error: {loaded} `broken = ir_broken:integration` of ir-broken 1.0 {problem}\n"
                "  fix: fix or uninstall ir-broken" + ("\n" if "loaded" in problem else " (docs/integrations.md)\n"))

    for args in (("integrations", "list"), ("validate", "paged")):
        result = run_ir(*args, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (1, "", expected), args
    assert run_ir("list", env=env).returncode == 0  # what does not load the integrations is not touched
