"""docs/playbook-format.md is tested: every field of the JSON Schema (`ir schema`) has a row in the section that
describes its object, the vocabularies (phases, template context, filters, exit codes) are all there, and every
YAML example is a valid playbook or a valid part of one."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ir import config, errors
from ir.format import templates
from ir.format.catalog import Catalog
from ir.format.load import settings_problems
from ir.format.model import PHASES, Playbook
from ir.format.schema import playbook_schema as schema_of
from ir.format.source import parse
from ir.integrations.registry import available, capabilities

DOC = Path(__file__).resolve().parents[1] / "docs" / "playbook-format.md"

# The heading that documents each object of the schema; a step kind is documented under "Every step" and its own
# "`kind: ...`" heading.
SECTIONS = {
    "Playbook": ["The playbook"],
    "Variable": ["Inputs and questions"],
    "Role": ["Roles"],
    "IntegrationSettings": ["Integration settings"],
    "SlackSettings": ["`integrations.slack`"],
    "JiraSettings": ["`integrations.jira`"],
    "EvidenceItem": ["Evidence items"],
    "Choice": ["Choices"],
}


def sections(text: str) -> dict[str, str]:
    """Heading text -> the text up to the next heading (lines in code blocks are never headings)."""
    out: dict[str, str] = {}
    heading, fenced = "", False
    for line in text.splitlines():
        fenced ^= line.startswith("```")
        match = None if fenced else re.match(r"#+ (.*)", line)
        if match:
            heading = match.group(1)
            out[heading] = ""
        else:
            out[heading] = out.get(heading, "") + line + "\n"
    return out


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value.rsplit("/", 1)[-1]
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def objects(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every object of the schema reachable from the root, by title, walking $ref through $defs."""
    found, todo = {}, [schema]
    while todo:
        node = todo.pop()
        if node["title"] not in found:
            found[node["title"]] = node
            todo += [schema["$defs"][name] for name in refs(node.get("properties", {}))]
    return found


def undocumented(schema: dict[str, Any], doc: str) -> list[str]:
    """`Object.field` for every schema field without a `| \\`field\\` |` row in its object's section(s)."""
    by_heading = sections(doc)
    missing = []
    for title, node in objects(schema).items():
        kind = node["properties"].get("kind", {}).get("const")
        headings = SECTIONS.get(title) or (["Every step", f"`kind: {kind}`"] if kind else [])
        assert headings, f"the schema has a new object {title}: document it and add its heading to SECTIONS"
        text = "".join(by_heading.get(h, "") for h in headings)
        missing += [f"{title}.{field}" for field in node["properties"] if f"| `{field}` |" not in text]
    return missing


def playbook_schema() -> dict[str, Any]:
    """The schema `ir schema` prints: the `integrations:` section describes the installed integrations' settings."""
    return schema_of({name: c.settings for name, c in capabilities().items()})


def test_every_schema_object_is_reachable_and_every_field_documented():
    schema = playbook_schema()

    assert set(objects(schema)) == {"Playbook", *schema["$defs"]}
    assert undocumented(schema, DOC.read_text()) == []


def test_an_undocumented_field_is_caught():
    doc = DOC.read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| `checklist` |"))

    assert undocumented(playbook_schema(), doc.replace(row + "\n", "")) == ["ManualStep.checklist"]


def enums(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        yield from (str(v) for v in node.get("enum", []))
        if "const" in node:
            yield str(node["const"])
        for value in node.values():
            yield from enums(value)
    elif isinstance(node, list):
        for item in node:
            yield from enums(item)


def test_every_allowed_value_is_documented():
    doc = DOC.read_text()

    assert sorted(v for v in set(enums(playbook_schema())) if f"`{v}`" not in doc) == []


def test_the_phases_are_documented_in_order():
    table = sections(DOC.read_text())["Phases"]

    assert re.findall(r"^\| `([a-z-]+)` \|", table, re.M) == list(PHASES)


def test_the_template_context_is_documented():
    table = sections(DOC.read_text())["Context"]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z]+)` \| (.*)$", table, re.M)}

    assert set(rows) == templates.CONTEXT_NAMES
    for name, fields in (("incident", templates.INCIDENT_FIELDS), ("steps", templates.STEP_FIELDS),
                         ("playbook", templates.PLAYBOOK_FIELDS)):
        assert sorted(f for f in fields if f"`{f}`" not in rows[name]) == [], name


def test_the_filters_are_documented():
    table = sections(DOC.read_text())["Filters"]

    assert set(re.findall(r"^\| `([a-z_]+)[(`]", table, re.M)) == set(templates.FILTERS)


def test_the_exit_codes_are_documented():
    table = sections(DOC.read_text())["Validation and exit codes"]
    codes = {0} | {value for name, value in vars(errors).items() if name.startswith("EXIT_")}

    assert {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.M)} == codes


def test_the_editor_modeline_is_documented():
    text = sections(DOC.read_text())["Editor support"]

    assert "# yaml-language-server: $schema=playbook.schema.json" in text
    assert "ir schema -o playbook.schema.json" in text


def yaml_examples() -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```", DOC.read_text(), re.M | re.S)


def test_there_are_yaml_examples():
    assert len(yaml_examples()) >= 12


@pytest.mark.parametrize("example", yaml_examples(), ids=lambda text: text.splitlines()[0][:40])
def test_every_yaml_example_is_a_valid_playbook_or_part_of_one(example, isolated):
    data = yaml.safe_load(example)
    if isinstance(data, dict) and {"id", "steps"} <= set(data):  # a whole playbook: every check ir makes
        path = isolated / "example.yaml"
        path.write_text(example)
        Catalog(capabilities).load(str(path))
        return
    minimal = {"id": "doc", "title": "Doc", "version": "1.0.0",
               "steps": [{"id": "only", "kind": "note", "title": "Only", "phase": "recovery", "message": "hi"}]}
    playbook = Playbook.model_validate({**minimal, **data} if isinstance(data, dict) else {**minimal, "steps": data})
    source = parse(yaml.safe_dump(playbook.model_dump(mode="json")).encode(), "example.yaml")
    assert settings_problems(playbook, source, {name: c.settings for name, c in capabilities().items()}) == []


README = DOC.parents[1] / "README.md"


def test_the_readme_names_every_environment_variable_the_integrations_read():
    text = README.read_text()
    table = text[text.index("| variable | for |"):]

    assert set(re.findall(r"`([A-Z_]+)`", table[:table.index("\n\n")])) == {
        var for integration in available().values() for var in integration.environment}


def test_the_readme_ir_toml_is_valid_and_sets_every_setting(isolated):
    example = re.search(r"^```toml\n(.*?)^```", README.read_text(), re.M | re.S)
    assert example
    (isolated / "ir.toml").write_text(example.group(1))
    tables = config.settings_model().model_fields

    config.load(cwd=isolated)  # raises on any mistake, at its line
    assert {f"{table}.{key}" for table, values in tomllib.loads(example.group(1)).items() for key in values} == {
        f"{table}.{name}" for table, info in tables.items() for name in info.annotation.model_fields}  # type: ignore[union-attr]


def test_every_test_docs_testing_names_exists():
    """docs/testing.md names the tests that pin each guarantee: a renamed or removed test fails here, not silently."""
    import re

    text = (DOC.parent / "testing.md").read_text(encoding="utf-8")
    named: list[tuple[str, str]] = []
    for match in re.finditer(r"tests/(\w+\.py)::(\w+)((?:,\s*::\w+)*)", text):
        named += [(match[1], name) for name in [match[2], *re.findall(r"::(\w+)", match[3])]]
    assert len(named) > 60
    tests = DOC.parents[1] / "tests"
    missing = [f"{file}::{name}" for file, name in named
               if not re.search(rf"^def {name}\(", (tests / file).read_text(encoding="utf-8"), re.M)]
    assert missing == []
