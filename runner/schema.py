"""The JSON Schemas of the playbook and scenario formats, for editors (yaml-language-server) and `ir schema`."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

SCHEMA_ID = "https://github.com/ir-runner/ir/schemas/playbook.schema.json"
SCENARIO_SCHEMA_ID = "https://github.com/ir-runner/ir/schemas/scenario.schema.json"


@lru_cache(maxsize=1)
def playbook_schema() -> dict[str, Any]:
    from .model import Playbook

    return _schema(Playbook, SCHEMA_ID)


@lru_cache(maxsize=1)
def scenario_schema() -> dict[str, Any]:
    """The tabletop scenario format (`ir schema --scenario`)."""
    from .scenario import Scenario

    return _schema(Scenario, SCENARIO_SCHEMA_ID)


def _schema(model: Any, schema_id: str) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id,
            **model.model_json_schema()}


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
