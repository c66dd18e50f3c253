"""The typed settings and the schema stay in step, and the typed form loses nothing."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping

import pytest

from feederflex import study
from feederflex.settings import Settings, as_settings

SCALARS = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None), "array": tuple}


def _resolve(node: dict, schema: dict) -> dict:
    if "$ref" in node:
        return {**schema["$defs"][node["$ref"].split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _mismatches(kind, node: dict, schema: dict, where: str) -> list[str]:
    """Where the class ``kind`` and the schema object ``node`` differ: field names (in any order: the
    classes are built by keyword), scalar types, nested objects and arrays of objects."""
    node = _resolve(node, schema)
    hints = typing.get_type_hints(kind)
    fields = [f.name for f in dataclasses.fields(kind)]
    props = node["properties"]
    out = [f"{where}: fields {sorted(fields)} != schema keys {sorted(props)}"] if set(fields) != set(props) else []
    for name in set(fields) & set(props):
        hint, prop = hints[name], _resolve(props[name], schema)
        at = f"{where}.{name}"
        origin = typing.get_origin(hint)
        if dataclasses.is_dataclass(hint):
            out += _mismatches(hint, prop, schema, at)
        elif origin is tuple and prop.get("type") == "array" and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            out += _mismatches(typing.get_args(hint)[0], _resolve(prop["items"], schema), schema, f"{at}[]")
        elif origin is tuple and prop.get("type") == "array":  # an array of scalars, or of arrays of them
            item, items = typing.get_args(hint)[0], _resolve(prop["items"], schema)
            got = typing.get_origin(item) or item
            if got is not SCALARS[items["type"]]:
                out.append(f"{at}[]: {got} in the class, {items['type']} in the schema")
        elif origin in (Mapping, dict):
            if prop.get("type") != "object":
                out.append(f"{at}: a mapping in the class, {prop.get('type')} in the schema")
        elif origin is typing.Literal:
            if set(typing.get_args(hint)) != set(prop.get("enum", [])):
                out.append(f"{at}: choices {typing.get_args(hint)} != schema enum {prop.get('enum')}")
        else:
            declared = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
            expected = {SCALARS[t] for t in declared}
            got = set(typing.get_args(hint)) if origin in (typing.Union, __import__("types").UnionType) else {hint}
            got = {typing.get_origin(g) or g for g in got}  # tuple[int, ...]: an array of scalars
            if got != expected:
                out.append(f"{at}: {got} in the class, {declared} in the schema")
    return out


def test_the_settings_classes_have_exactly_the_schemas_keys_and_types(schema):
    assert _mismatches(Settings, schema["properties"]["base"], schema, "base") == []


def test_a_renamed_field_is_found(schema):
    """The comparison itself can fail: a schema with one key renamed does not match."""
    base = _resolve(schema["properties"]["base"], schema)
    renamed = {**base, "properties": {("grid2" if k == "grid" else k): v for k, v in base["properties"].items()}}
    assert _mismatches(Settings, renamed, schema, "base")


@pytest.mark.parametrize("name", ["tong2021", "yang2015", "cai2023", "tradeoffs", "tiny_rolling"])
def test_every_shipped_scenario_round_trips_through_the_typed_form(root, schema, name):
    files = [root / "config" / "config.yaml", root / "config" / "studies" / f"{name}.yaml"]
    _, scenarios = study.load_study(study.merge_study_files(files), root / "config" / "schema.yaml", files)
    for settings in scenarios.values():
        typed = as_settings(settings)
        assert typed.to_dict() == settings
        assert as_settings(typed) is typed
    with pytest.raises(dataclasses.FrozenInstanceError):
        typed.solver.threads = 4  # type: ignore[misc]
