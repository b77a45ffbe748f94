"""The JSON Schemas of the formats, for editors (yaml-language-server) and `ir schema`: built from the pydantic
models, with each field's docstring as its description."""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from pydantic import BaseModel, Field, create_model

from ir.format.model import Model, Playbook, integration_settings

SCHEMA_ID = "https://github.com/ir-runner/ir/schemas/playbook.schema.json"


def playbook_schema(settings: Mapping[str, type[BaseModel]] | None = None) -> dict[str, Any]:
    """The playbook format's schema. Given the settings model of each installed integration (what `ir schema`
    passes), its `integrations:` section describes each one's settings; without, it is an object of objects."""
    return _playbook_schema(tuple((settings or {}).items()))


@lru_cache(maxsize=4)
def _playbook_schema(settings: tuple[tuple[str, type[BaseModel]], ...]) -> dict[str, Any]:
    model: type[Model] = Playbook
    if settings:
        section = integration_settings(dict(settings))
        model = create_model("Playbook", __base__=Playbook, integrations=(section, Field(default_factory=section)))
    return json_schema(model, SCHEMA_ID)


def json_schema(model: type[Model], schema_id: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    classes = _models(Model)
    for name, node in [(model.__name__, schema), *schema.get("$defs", {}).items()]:
        if name in classes:
            for field, text in _field_docs(classes[name]).items():
                if field in node.get("properties", {}):
                    node["properties"][field].setdefault("description", text)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id, **schema}


def _models(base: type[Model]) -> dict[str, type[Model]]:
    """Every model class of the formats, by name (their names are unique)."""
    out: dict[str, type[Model]] = {}
    for cls in base.__subclasses__():
        out |= {cls.__name__: cls, **_models(cls)}
    return out


def _field_docs(cls: type[Model]) -> dict[str, str]:
    """A model's field docstrings, its base classes' included: `field: type` then a string on the next line."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        node = _class_nodes(klass.__module__).get(klass.__name__)
        body = node.body if node else []
        for field, doc in zip(body, body[1:]):
            if (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
                    and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
                    and isinstance(doc.value.value, str)):
                out[field.target.id] = inspect.cleandoc(doc.value.value)
    return out


@cache
def _class_nodes(module: str) -> dict[str, ast.ClassDef]:
    """The top-level classes of a module of ours, parsed from its source (models of other packages have none)."""
    if not module.startswith("ir."):
        return {}
    tree = ast.parse(inspect.getsource(sys.modules[module]))
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def allowed_fields(schema: dict[str, Any], loc: tuple[Any, ...], data: Any) -> list[str]:
    """The field names a format (`schema`, the JSON Schema of its model) accepts for the mapping that holds `loc`
    (for "did you mean" hints)."""
    defs = schema["$defs"]
    node: Any = schema
    for part in loc[:-1]:
        node = _pick(node, defs, data)
        node = node.get("items", {}) if isinstance(part, int) else (
            node.get("properties", {}).get(part) or node.get("additionalProperties") or {})
        data = data[part] if isinstance(data, (dict, list)) and _has(data, part) else None
    return sorted(_pick(node, defs, data).get("properties", {}))


def _has(data: Any, part: Any) -> bool:
    return part in data if isinstance(data, dict) else isinstance(part, int) and part < len(data)


def _pick(node: Any, defs: dict[str, Any], data: Any) -> Any:
    """Follow $ref, and choose the union member that a discriminated mapping (`kind:`) selects."""
    while True:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        elif "discriminator" in node and isinstance(data, dict):
            ref = node["discriminator"]["mapping"].get(data.get(node["discriminator"]["propertyName"]))
            if not ref:
                return {}
            node = {"$ref": ref}
        elif "anyOf" in node:
            options = [o for o in node["anyOf"] if o.get("type") != "null"]
            if len(options) != 1:
                return node
            node = options[0]
        else:
            return node
