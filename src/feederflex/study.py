"""Studies: strict validation of a study config and its expansion into scenarios.

A study is study-wide settings (``network``, ``time``, ``days``, ``fleets``), ``base`` scenario
settings and ``scenarios``: named overrides of ``base`` (``list``) and/or the product of named
axes whose levels are overrides (``axes``). Every scenario's effective settings are validated
against the schema of ``base``, so a bad study fails when the workflow is parsed, naming the
file, the key and what was expected.
"""

from __future__ import annotations

import copy
import functools
import itertools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from jsonschema import Draft202012Validator

from feederflex.checks import check_bills, check_hosting, check_multiobjective, check_scenario, check_study
from feederflex.errors import ConfigError
from feederflex.settings import Settings

# a name that becomes a folder or file name: no separators, no leading dot (so never "." or "..")
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# libyaml's parser where PyYAML has it (several times faster on a study of a thousand scenarios);
# the constructors below are Python either way
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (YAML's last-one-wins would
    silently drop, say, a scenario)."""


def _no_duplicate_keys(loader: Any, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"{loader.name}: line {key_node.start_mark.line + 1}: key {key!r} appears twice in the same "
                f"mapping (first on line {seen[key]}); YAML would silently keep only the last"
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)
# Numbers in exponent form without a dot or an exponent sign (1e6, 1.0e6) are floats, as in YAML 1.2;
# PyYAML follows YAML 1.1 and reads them as strings, which the schema would then reject.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a mapping with a duplicate key is a :class:`ConfigError` naming file and line."""
    with open(path) as handle:
        loader = _StrictLoader(handle)
        loader.name = str(path)  # libyaml's loader has no name of its own
        try:
            return loader.get_single_data() or {}
        finally:
            loader.dispose()


def read_yaml(path: str | Path) -> Any:
    """:func:`load_yaml` read once per process while the file is unchanged: the workflow asks for
    the schema and each study file more than once while it parses. Shared: do not modify it."""
    stat = Path(path).stat()
    return _read_yaml(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, str(path))


@functools.lru_cache(maxsize=32)
def _read_yaml(resolved: str, mtime_ns: int, size: int, name: str) -> Any:
    return load_yaml(name)


def _copy(value: Any) -> Any:
    """A deep copy of plain YAML data (dicts, lists, scalars); several times faster than
    :func:`copy.deepcopy`, which a study of a thousand scenarios calls for every one."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return copy.deepcopy(value) if not isinstance(value, (str, int, float, bool, type(None))) else value


def _fill_defaults(instance: Any, schema: Mapping, root: Mapping) -> None:
    """Insert schema defaults for missing properties, recursively (objects and array items).

    Not ``snakemake.utils.validate(set_default=True)``: that validates one config against a schema
    file from inside a running workflow and cannot say which of the merged study files a bad key
    came from, nor fill the defaults of each scenario's settings (which are not the config)."""
    if "$ref" in schema:
        schema = {**_resolve(schema["$ref"], root), **{k: v for k, v in schema.items() if k != "$ref"}}
    if isinstance(instance, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
            if key in instance:
                _fill_defaults(instance[key], sub, root)
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key, value in instance.items():
                if key not in schema.get("properties", {}):
                    _fill_defaults(value, extra, root)
    elif isinstance(instance, list) and isinstance(schema.get("items"), Mapping):
        for item in instance:
            _fill_defaults(item, schema["items"], root)


def _resolve(ref: str, root: Mapping) -> Mapping:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _path_text(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _source_of(path: list[Any], sources: list[tuple[str, Any]]) -> str:
    """The last config file that sets ``path`` (or its nearest parent)."""
    for depth in range(len(path), -1, -1):
        for name, content in reversed(sources):
            node = content
            try:
                for part in path[:depth]:
                    node = node[part]
            except (KeyError, IndexError, TypeError):
                continue
            return name
    return sources[-1][0] if sources else "config"


def _first_error(
    instance: Any,
    schema: Mapping,
    where: str,
    prefix: list[Any],
    sources,
    validator: Draft202012Validator | None = None,
) -> None:
    validator = validator or Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if not errors:
        return
    error = errors[0]
    path = prefix + list(error.absolute_path)
    detail = error.message
    if error.validator == "additionalProperties" and isinstance(error.schema.get("properties"), Mapping):
        known = sorted(error.schema["properties"])
        detail += f"; expected one of {known}"
    if error.validator == "oneOf":
        detail = f"{error.instance!r} is not valid: {error.schema.get('description', 'see schema')}"
    raise ConfigError(f"{_source_of(path, sources) if sources else where}: {_path_text(path)}: {detail}")


def validate_config(config: dict, schema: Mapping, sources: list[tuple[str, Any]] | None = None) -> dict:
    """Return a validated copy of ``config`` with every default filled in.

    Parameters
    ----------
    config
        The merged study config (config.yaml overlaid by the study file).
    schema
        The JSON schema (config/schema.yaml).
    sources
        ``(file name, parsed content)`` of each config file in the order they were merged, used to
        name the file an error comes from.
    """
    sources = sources or []
    filled = copy.deepcopy(config)
    _first_error(filled, schema, "config", [], sources)
    _fill_defaults(filled, schema, schema)
    _first_error(filled, schema, "config", [], sources)
    return filled


def merge(base: Mapping, override: Mapping, path: list[str] | None = None, schema: Mapping | None = None) -> dict:
    """``base`` with ``override`` merged in, key by key (a copy; mappings merged, everything else replaced).

    With ``path`` (where ``base`` sits, for messages) the merge is strict: a key base does not have
    is a KeyError unless the schema makes this object a free map (``additionalProperties`` a
    schema, no ``properties``), such as ``objective.bounds``. Without it, new keys are added, as
    Snakemake merges config files (``snakemake.utils.update_config``).
    """
    out = copy.deepcopy(dict(base))
    schema = schema or {}
    free_map = "properties" not in schema and isinstance(schema.get("additionalProperties"), Mapping)
    for key, value in override.items():
        if path is not None and key not in out and not free_map:
            raise KeyError([*path, key], sorted(out))
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value, None if path is None else [*path, key], sub)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_study_files(files: Iterable[str | Path]) -> dict:
    """The study the workflow sees for ``snakemake --configfile`` of ``files`` after
    config/config.yaml: every file merged over the ones before it, except ``scenarios``, which is
    taken whole from the last file that sets it (a study's scenarios replace the default ones)."""
    merged: dict = {}
    for path in files:
        content = load_yaml(path)
        merged = merge(merged, {k: v for k, v in content.items() if k != "scenarios"})
        if "scenarios" in content:
            merged["scenarios"] = copy.deepcopy(content["scenarios"])
    return merged


def scenario_overrides(config: Mapping) -> dict[str, tuple[str, dict]]:
    """Scenario name -> (where it is defined, merged override) in a stable order."""
    spec = config["scenarios"]
    table: dict[str, tuple[str, dict]] = {}
    for name, override in spec["list"].items():
        table[name] = (f"scenarios.list.{name}", override or {})
    axes = spec["axes"]
    if axes:
        names = list(axes)
        for levels in itertools.product(*(list(axes[a].items()) for a in names)):
            name = "_".join(f"{axis}-{level}" for axis, (level, _) in zip(names, levels, strict=True))
            merged: dict = {}
            where = " x ".join(f"scenarios.axes.{axis}.{level}" for axis, (level, _) in zip(names, levels, strict=True))
            for _, override in levels:
                merged = merge(merged, override or {})
            if name in table:
                raise ConfigError(f"scenarios: the name {name!r} is defined both in list and by axes")
            table[name] = (where, merged)
    if not table:
        table["base"] = ("base", {})
    return table


# Keywords of an object schema that judge each property on its own (or annotate): an override is
# checked where it replaces a value. An object node with any other keyword (propertyNames,
# required, minProperties, ...) is validated whole wherever an override merges into it.
_PER_PROPERTY = frozenset(
    {"type", "description", "default", "title", "examples", "$comment", "$defs", "properties", "additionalProperties"}
)


class _OverrideValidator:
    """Validates a scenario's override against the sub-schemas of the keys it replaces.

    The base settings are validated once, with the whole study (:func:`validate_config`); a
    scenario's effective settings differ from them only where its override replaces a value (a
    scalar, a list, or a mapping where base has none) and in the mappings that hold those values.
    So each replaced value, with its defaults filled, is validated against its own sub-schema, and
    a merged mapping again only if its schema constrains the mapping as a whole: the same errors as
    validating the merged document, at a thousandth of the work for a one-key override."""

    def __init__(self, base_schema: Mapping) -> None:
        self.root = base_schema
        self.defs = base_schema.get("$defs", {})
        self._resolved: dict[int, tuple[Mapping, Mapping]] = {}
        self._validators: dict[int, tuple[Mapping, Draft202012Validator]] = {}

    def resolve(self, schema: Mapping) -> Mapping:
        """``schema`` with its ``$ref`` merged in (the same object every time, so validators cache)."""
        if "$ref" not in schema:
            return schema
        key = id(schema)
        if key not in self._resolved:
            target = {**_resolve(schema["$ref"], self.root), **{k: v for k, v in schema.items() if k != "$ref"}}
            self._resolved[key] = (schema, target)
        return self._resolved[key][1]

    def validate(self, value: Any, schema: Mapping, path: list[Any], file: str) -> None:
        key = id(schema)
        if key not in self._validators:
            self._validators[key] = (schema, Draft202012Validator({**schema, "$defs": self.defs}))
        _first_error(value, schema, file, path, [], self._validators[key][1])

    def merge(self, base: Mapping, override: Mapping, schema: Mapping, path: list[Any], file: str) -> dict:
        """``base`` with ``override`` merged in, as :func:`merge` with a ``path`` does (strict), each
        replaced value filled with its defaults and validated. The result shares base's unchanged
        values: copy it before handing it out."""
        schema = self.resolve(schema)
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        free_map = "properties" not in schema and isinstance(extra, Mapping)
        out = dict(base)
        for key, value in override.items():
            if key not in base and not free_map:
                raise KeyError([*path, key], sorted(base))
            sub = self.resolve(properties.get(key, extra if isinstance(extra, Mapping) else {}))
            if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
                out[key] = self.merge(base[key], value, sub, [*path, key], file)
            else:
                replaced = _copy(value)
                _fill_defaults(replaced, sub, self.root)
                self.validate(replaced, sub, [*path, key], file)
                out[key] = replaced
        if set(schema) - _PER_PROPERTY:
            self.validate(out, schema, path, file)
        return out


def expand_scenarios(
    config: dict,
    schema: Mapping,
    sources: list[tuple[str, Any]] | None = None,
    bus_numbers: Iterable[int] | None = None,
    loaded_buses: Iterable[int] | None = None,
    typed: dict[str, Settings] | None = None,
) -> dict[str, dict]:
    """Effective, validated settings of every scenario of a validated study config.

    ``config["base"]`` was validated with the study (:func:`validate_config`); each scenario's
    override is validated against the sub-schemas of the keys it sets (:class:`_OverrideValidator`).
    If ``typed`` is given, it receives each scenario's :class:`~feederflex.settings.Settings` (built
    once here for the checks, so the workflow need not build them again).

    Raises
    ------
    ConfigError
        For an override of a key that base does not have, a value the schema rejects, a day or
        fleet name that the study does not define, or a bus that the feeder does not have.
    """
    sources = sources or []
    base_schema = dict(schema["properties"]["base"])
    base_schema["$defs"] = schema.get("$defs", {})
    file = sources[-1][0] if sources else "config"
    checker = _OverrideValidator(base_schema)
    base = config["base"]
    base_typed: Settings | None = None  # base as Settings; a scenario converts only what it overrides
    scenarios = {}
    for name, (where, override) in scenario_overrides(config).items():
        if not PLAIN_NAME.match(name):
            raise ConfigError(
                f"{file}: {where}: scenario name {name!r} is not a plain name (letters, digits, _ . -, "
                "starting with a letter or digit): it names files under results/"
            )
        try:
            settings = _copy(checker.merge(base, override, base_schema, [], file))
        except KeyError as err:
            path, known = err.args
            raise ConfigError(
                f"{file}: {where}: overrides base.{'.'.join(path)}, which does not exist; keys there are {known}"
            ) from None
        except ConfigError as err:
            raise ConfigError(f"{file}: {where} (scenario {name!r}): {str(err).split(': ', 1)[1]}") from None
        if base_typed is None:
            base_typed = Settings.from_dict(base)
        settings_typed = base_typed.with_sections(settings, override)
        check_scenario(settings_typed, config, f"{file}: {where} (scenario {name!r})", bus_numbers, loaded_buses)
        scenarios[name] = settings
        if typed is not None:
            typed[name] = settings_typed
    return scenarios


class Study(NamedTuple):
    """A loaded study: the validated config, every scenario's settings as plain data and as
    :class:`~feederflex.settings.Settings` (what the workflow's resource functions read)."""

    config: dict
    scenarios: dict[str, dict]
    settings: dict[str, Settings]


def load_study(config: dict, schema_path: str | Path, source_files: list[str | Path]) -> tuple[dict, dict[str, dict]]:
    """Validate a merged study config and expand its scenarios: :func:`parse_study` without the
    typed settings."""
    loaded = parse_study(config, schema_path, source_files)
    return loaded.config, loaded.scenarios


def parse_study(config: dict, schema_path: str | Path, source_files: list[str | Path]) -> Study:
    """Validate a merged study config and expand its scenarios (what the Snakefile calls).

    ``source_files`` are the YAML files merged into ``config``, in order; they are read again
    (once per process, :func:`read_yaml`) only to name the file an error comes from. The feeder's
    buses are checked without building it for built-in feeders; a pandapower JSON network is
    loaded and checked to be radial here.
    """
    from feederflex.feeders import bus_numbers

    schema = read_yaml(schema_path)
    sources = [(str(f), read_yaml(f)) for f in source_files]
    valid = validate_config(config, schema, sources)
    buses = bus_numbers(valid["network"]["source"])
    check_study(valid, buses)
    typed: dict[str, Settings] = {}
    scenarios = expand_scenarios(valid, schema, sources, buses, typed=typed)
    if any(settings["dr"] for settings in scenarios.values()):  # needs the feeder's loads: build it only then
        from feederflex.feeders import loaded_buses

        typed = {}
        scenarios = expand_scenarios(
            valid, schema, sources, buses, loaded_buses(valid["network"]["source"]), typed=typed
        )
    n_steps = round(float(valid["time"]["hours"]) * 60 / int(valid["time"]["step_minutes"]))
    if any(settings["mess"]["units"] for settings in scenarios.values()) and valid["plots"]["mess_step"] >= n_steps:
        raise ConfigError(
            f"plots.mess_step = {valid['plots']['mess_step']} is beyond the horizon: expected 0..{n_steps - 1} "
            f"({n_steps} steps); the MESS positions figure would have no step to draw"
        )
    unknown = sorted(set(valid["plots"]["scenarios"]) - set(scenarios))
    if unknown:
        raise ConfigError(f"plots.scenarios: {unknown} are not scenarios of the study (have {list(scenarios)})")
    check_multiobjective(valid, scenarios)
    check_hosting(valid, scenarios, buses)
    check_bills(valid, scenarios)
    from feederflex.kpis import KPI_UNITS

    bad = sorted(set(valid["plots"]["kpis"]) - set(KPI_UNITS))
    if bad:
        raise ConfigError(f"plots.kpis: {bad} are not KPI columns; expected some of {sorted(KPI_UNITS)}")
    return Study(valid, scenarios, typed)
