"""The one way to load a playbook: YAML text -> checked `Playbook`, or `InvalidPlaybook` listing every problem
with file:line:column, the path inside the document, what is wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, create_model

from ir.errors import InvalidPlaybook, Problem
from ir.format import rules as checks
from ir.format.model import STEP_KINDS, Model, Playbook, integration_settings
from ir.format.schema import allowed_fields, playbook_schema
from ir.format.source import Source, format_loc, parse, read_raw


@dataclass(frozen=True)
class Loaded:
    """A playbook that passed the schema, with the source it came from (positions for later checks)."""

    playbook: Playbook
    source: Source
    text: bytes


def load_file(path: Path) -> Loaded:
    raw = read_raw(path)  # read once: what is validated is what is kept
    return _validate(parse(raw, str(path)), raw)


def load_text(raw: bytes, name: str) -> Loaded:
    return _validate(parse(raw, name), raw)


def _validate(source: Source, raw: bytes) -> Loaded:
    if not isinstance(source.data, dict):
        kind = type(source.data).__name__.replace("str", "text").replace("NoneType", "null")
        raise InvalidPlaybook([source.problem((), f"the document is a {kind}, but a playbook is a mapping",
                                              "start the file with `id:`, `title:`, `version:` and `steps:`")])
    try:
        playbook = Playbook.model_validate(source.data)
    except ValidationError as exc:
        raise InvalidPlaybook(schema_problems(exc, source, playbook_schema())) from None
    problems = checks.check_playbook(playbook, source)
    if problems:
        raise InvalidPlaybook(problems)
    return Loaded(playbook, source, raw)


def settings_problems(playbook: Playbook, source: Source, models: Mapping[str, type[BaseModel]]) -> list[Problem]:
    """The playbook's `integrations:` section checked against the settings model of each installed integration
    (`models`, from the caller: the format does not load plugins): an unknown integration or setting, a bad value."""
    if not playbook.integrations:
        return []
    section = create_model("Section", __base__=Model, integrations=(integration_settings(models), None))
    try:
        section.model_validate({"integrations": playbook.integrations})
    except ValidationError as exc:
        return schema_problems(exc, source, section.model_json_schema())
    return []


def schema_problems(exc: ValidationError, source: Source, schema: dict[str, Any]) -> list[Problem]:
    """Turn pydantic's errors into positioned problems, one per error, in file order; `schema` is the JSON Schema
    of the model that raised them, for the names an unknown field could have meant."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = _strip_union_tags(error["loc"], source.data)
        message, hint = _explain(error, loc, source, schema)
        problems.append(source.problem(loc, message, hint, key=error["type"] == "extra_forbidden"))
    problems.sort(key=lambda p: (p.line or 0, p.column or 0))
    return _dedupe(problems)


def _strip_union_tags(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Pydantic puts the discriminator's value into the path (`steps.3.manual.title`); drop it."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part not in node and part in STEP_KINDS:
            continue
        if isinstance(part, str) and part.startswith("function-"):
            continue
        out.append(part)
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
    return tuple(out)


def _explain(error: Any, loc: tuple[Any, ...], source: Source, schema: dict[str, Any]) -> tuple[str, str | None]:
    kind, msg = error["type"], error["msg"]
    field = loc[-1] if loc else None
    if kind == "extra_forbidden":
        siblings = allowed_fields(schema, loc, source.data)
        close = difflib.get_close_matches(str(field), siblings, n=1)
        hint = f"did you mean `{close[0]}`?" if close else (
            f"allowed here: {', '.join(sorted(siblings))}" if siblings else "remove it")
        return f"unknown field `{field}`", hint
    if kind == "missing":
        return f"`{field}` is required", f"add `{field}:` here"
    if kind == "union_tag_invalid":
        tag = str(error["ctx"]["tag"])
        close = difflib.get_close_matches(tag, STEP_KINDS, n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"use one of: {', '.join(STEP_KINDS)}"
        return f"unknown step kind {tag!r}", hint
    if kind == "union_tag_not_found":
        return "the step has no `kind`", f"add `kind:` with one of: {', '.join(STEP_KINDS)}"
    if kind == "string_pattern_mismatch":
        return f"{error['input']!r} is not valid here", _pattern_hint(str(field))
    if kind == "literal_error":
        return f"{error['input']!r} is not allowed", msg.replace("Input should be", "use")
    if kind.endswith("_type") or kind.endswith("_parsing"):
        got = type(error["input"]).__name__.replace("str", "text").replace("NoneType", "nothing")
        return f"{msg.lower().replace('input should be', 'should be')} (got {got})", _TYPE_HINTS.get(kind)
    if kind == "too_short":
        return (f"needs at least {error['ctx']['min_length']} item(s), has {error['ctx']['actual_length']}",
                f"add more entries under `{field}`")
    if kind == "value_error":
        return msg.removeprefix("Value error, "), None
    return msg, None


_TYPE_HINTS = {
    "string_type": "quote the value to make it text",
    "list_type": "write a list: one `- item` a line, or `[a, b]`",
    "dict_type": "write a mapping: `name: value` lines, indented under the key",
    "model_type": "write a mapping: `name: value` lines, indented under the key",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "int_parsing": "write a whole number",
    "int_type": "write a whole number",
    "float_parsing": "write a number",
    "float_type": "write a number",
}


def _pattern_hint(field: str) -> str:
    return {
        "version": 'use a semantic version such as "1.0.0", quoted',
        "id": "use lowercase letters, digits and _ (steps, inputs) or - (playbook ids), starting with a letter",
        "sla": "write a duration such as 15m, 4h, 1h30m or 2d",
        "playbook": "use the included playbook's id: lowercase letters, digits and dashes",
    }.get(field, "use lowercase letters, digits and underscores, starting with a letter")


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        if (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            out.append(p)
    return out


__all__ = ["Loaded", "load_file", "load_text", "schema_problems", "format_loc"]
