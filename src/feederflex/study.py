"""Studies: strict validation of a study config and its expansion into scenarios.

A study is study-wide settings (``network``, ``time``, ``days``, ``fleets``), ``base`` scenario
settings and ``scenarios``: named overrides of ``base`` (``list``) and/or the product of named
axes whose levels are overrides (``axes``). Every scenario's effective settings are validated
against the schema of ``base``, so a bad study fails when the workflow is parsed, naming the
file, the key and what was expected.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

# a name that becomes a folder or file name: no separators, no leading dot (so never "." or "..")
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A study config that does not match the schema or refers to things that do not exist."""


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (YAML's last-one-wins would
    silently drop, say, a scenario)."""


def _no_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
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


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a mapping with a duplicate key is a :class:`ConfigError` naming file and line."""
    with open(path) as handle:
        return yaml.load(handle, Loader=_StrictLoader) or {}  # noqa: S506 (a SafeLoader subclass)


def _fill_defaults(instance: Any, schema: Mapping, root: Mapping) -> None:
    """Insert schema defaults for missing properties, recursively (objects and array items)."""
    if "$ref" in schema:
        schema = _resolve(schema["$ref"], root) | {k: v for k, v in schema.items() if k != "$ref"}
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


def _first_error(instance: Any, schema: Mapping, where: str, prefix: list[Any], sources) -> None:
    validator = Draft202012Validator(schema)
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


def _merge(base: dict, override: Mapping, path: list[str], schema: Mapping | None = None) -> dict:
    """``base`` with ``override`` merged in; a key base does not have is a KeyError unless the
    schema makes this object a free map (``additionalProperties`` a schema, no ``properties``),
    such as ``objective.bounds``."""
    out = copy.deepcopy(base)
    schema = schema or {}
    free_map = "properties" not in schema and isinstance(schema.get("additionalProperties"), Mapping)
    for key, value in override.items():
        if key not in out and not free_map:
            raise KeyError(path + [key], sorted(out))
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, path + [key], sub)
        else:
            out[key] = copy.deepcopy(value)
    return out


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
                merged = _deep_update(merged, override or {})
            if name in table:
                raise ConfigError(f"scenarios: the name {name!r} is defined both in list and by axes")
            table[name] = (where, merged)
    if not table:
        table["base"] = ("base", {})
    return table


def _deep_update(target: dict, override: Mapping) -> dict:
    out = copy.deepcopy(target)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expand_scenarios(
    config: dict,
    schema: Mapping,
    sources: list[tuple[str, Any]] | None = None,
    bus_numbers: Iterable[int] | None = None,
    loaded_buses: Iterable[int] | None = None,
) -> dict[str, dict]:
    """Effective, validated settings of every scenario of a validated study config.

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
    scenarios = {}
    for name, (where, override) in scenario_overrides(config).items():
        if not PLAIN_NAME.match(name):
            raise ConfigError(
                f"{file}: {where}: scenario name {name!r} is not a plain name (letters, digits, _ . -, "
                "starting with a letter or digit): it names files under results/"
            )
        try:
            settings = _merge(config["base"], override, [], base_schema)
        except KeyError as err:
            path, known = err.args
            raise ConfigError(
                f"{file}: {where}: overrides base.{'.'.join(path)}, which does not exist; keys there are {known}"
            ) from None
        _fill_defaults(settings, base_schema, base_schema)
        try:
            _first_error(settings, base_schema, file, [], [])
        except ConfigError as err:
            raise ConfigError(f"{file}: {where} (scenario {name!r}): {str(err).split(': ', 1)[1]}") from None
        _check_references(settings, config, f"{file}: {where} (scenario {name!r})", bus_numbers, loaded_buses)
        scenarios[name] = settings
    return scenarios


def _check_references(
    settings: dict,
    config: Mapping,
    where: str,
    bus_numbers: Iterable[int] | None,
    loaded_buses: Iterable[int] | None = None,
) -> None:
    if settings["day"] not in config["days"]:
        raise ConfigError(f"{where}: day {settings['day']!r} is not defined in days (have {sorted(config['days'])})")
    fleet = settings["ev_fleet"]
    if fleet is not None and fleet not in config["fleets"]:
        raise ConfigError(f"{where}: ev_fleet {fleet!r} is not defined in fleets (have {sorted(config['fleets'])})")
    buses = set(bus_numbers) if bus_numbers is not None else None
    lookahead = settings["operation"]["lookahead_steps"]
    n_steps = round(float(config["time"]["hours"]) * 60 / int(config["time"]["step_minutes"]))
    if lookahead is not None and lookahead > n_steps:
        raise ConfigError(
            f"{where}: operation.lookahead_steps = {lookahead} is longer than the day ({n_steps} steps of "
            f"time.step_minutes = {config['time']['step_minutes']}) and there is no next-day data; "
            f"expected 1..{n_steps} "
            "or null (the rest of the day)"
        )
    if lookahead is not None and settings["operation"]["mode"] != "rolling":
        raise ConfigError(
            f"{where}: operation.lookahead_steps = {lookahead} is only used by operation.mode = rolling, "
            f"not {settings['operation']['mode']!r}; set it to null or change the mode"
        )
    grid = settings["grid"]
    if grid["v_min_pu"] >= grid["v_max_pu"]:
        raise ConfigError(f"{where}: grid.v_min_pu {grid['v_min_pu']} must be below grid.v_max_pu {grid['v_max_pu']}")
    if not grid["v_min_pu"] <= grid["substation_v_pu"] <= grid["v_max_pu"]:
        raise ConfigError(
            f"{where}: grid.substation_v_pu = {grid['substation_v_pu']} is outside the voltage band "
            f"[grid.v_min_pu, grid.v_max_pu] = [{grid['v_min_pu']}, {grid['v_max_pu']}]: the "
            "substation bus would violate it "
            "at every step"
        )
    control = settings["ev_control"]
    hours = float(config["time"]["hours"])
    if fleet is not None and control["mode"] == "aggregate" and abs(hours - 24.0) > 1e-9:
        raise ConfigError(
            f"{where}: ev_control.mode = aggregate needs a 24-hour (periodic) day, but time.hours = {hours:g}; "
            "use 24 hours or another ev_control.mode"
        )
    if control["v2g"] and fleet is None:
        raise ConfigError(
            f"{where}: ev_control.v2g = true, but the scenario has no ev_fleet: there are no vehicles to "
            "discharge; set ev_fleet or v2g: false"
        )
    for term, ends in settings["objective"]["fuzzy"].items():
        if float(ends[0]) == float(ends[1]):
            raise ConfigError(
                f"{where}: objective.fuzzy.{term} = {ends}: best and reference are equal, so the membership "
                "is undefined; give two different values"
            )
    for kind in ("pv", "fess", "dr"):
        names = [unit["name"] for unit in settings[kind]]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}: {kind} unit names must be unique, got {names}")
        for k, unit in enumerate(settings[kind]):
            if buses is not None and unit["bus"] not in buses:
                raise ConfigError(
                    f"{where}: {kind}[{k}] ({unit['name']}).bus = {unit['bus']} is not a bus of the feeder "
                    f"(buses {min(buses)}..{max(buses)})"
                )
    loaded = set(loaded_buses) if loaded_buses is not None else None
    for k, unit in enumerate(settings["dr"]):
        if loaded is not None and unit["bus"] not in loaded:
            raise ConfigError(
                f"{where}: dr[{k}] ({unit['name']}).bus = {unit['bus']} has no load in the feeder, so demand response "
                f"has nothing to curtail or shift (buses with load: {sorted(loaded)[:12]}...)"
            )
    risk = settings["risk"]
    if None not in (risk["reserve_price_usd_per_mwh"], risk["curtailment_price_usd_per_mwh"]) and (
        risk["reserve_price_usd_per_mwh"] < risk["curtailment_price_usd_per_mwh"]
    ):
        raise ConfigError(
            f"{where}: risk.reserve_price_usd_per_mwh {risk['reserve_price_usd_per_mwh']} must be at least "
            f"risk.curtailment_price_usd_per_mwh {risk['curtailment_price_usd_per_mwh']} (else the "
            "risk cost is unbounded)"
        )
    mess_units = settings["mess"]["units"]
    names = [unit["name"] for unit in mess_units]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: mess unit names must be unique, got {names}")
    stations = [s["bus"] for s in config["transport"]["stations"]]
    for k, unit in enumerate(mess_units):
        if unit["initial_station"] not in stations:
            raise ConfigError(
                f"{where}: mess.units[{k}] ({unit['name']}).initial_station = {unit['initial_station']} "
                f"is not one of transport.stations {stations}"
            )
    for kind, units in (("fess", settings["fess"]), ("mess.units", mess_units)):
        for k, unit in enumerate(units):
            if not unit["soc_min"] <= unit["soc_init"] <= unit["soc_max"]:
                raise ConfigError(
                    f"{where}: {kind}[{k}] ({unit['name']}): initial energy outside the SOC window, need "
                    f"soc_min <= soc_init <= soc_max, got {unit['soc_min']}, {unit['soc_init']}, {unit['soc_max']}"
                )


def check_study_settings(config: Mapping) -> None:
    """Study-wide checks of values the schema cannot judge alone (no feeder needed)."""
    import datetime

    hours, step = float(config["time"]["hours"]), int(config["time"]["step_minutes"])
    if abs(hours * 60 / step - round(hours * 60 / step)) > 1e-9:
        raise ConfigError(
            f"time.hours = {hours} is not a whole number of time.step_minutes = {step} steps "
            f"({hours * 60:g} min / {step} min = {hours * 60 / step:g})"
        )
    for name, day in config["days"].items():
        try:
            datetime.date.fromisoformat(day["date"])
        except ValueError:
            raise ConfigError(f"days.{name}.date = {day['date']!r} is not a calendar date (YYYY-MM-DD)") from None
    buses = [s["bus"] for s in config["transport"]["stations"]]
    twice = sorted({b for b in buses if buses.count(b) > 1})
    if twice:
        raise ConfigError(f"transport.stations: bus {twice} listed more than once; each station is one bus")
    for name, fleet in config["fleets"].items():
        params = fleet.get("distributions", {})
        commute = params.get("commute", {})
        for table in ("work_arrival_table", "home_arrival_table"):
            for k, (hour, probability) in enumerate(commute.get(table, [])):
                if not 0.0 <= probability <= 1.0:
                    raise ConfigError(
                        f"fleets.{name}.distributions.commute.{table}[{k}] = [{hour}, {probability}]: "
                        "a probability must be in [0, 1]"
                    )
        for k, drive in enumerate(commute.get("drive_h", [])):
            if drive >= hours:
                raise ConfigError(
                    f"fleets.{name}.distributions.commute.drive_h[{k}] = {drive} h is not shorter than the "
                    f"horizon time.hours = {hours} h: the trip could never end inside the day"
                )
    transport = config["transport"]
    for k, delay in enumerate(transport["delay_h"]):
        if delay + transport["install_h"] >= hours:
            raise ConfigError(
                f"transport.delay_h[{k}] = {delay} h (+ install_h {transport['install_h']} h) is not shorter "
                f"than the horizon time.hours = {hours} h: no trip could end inside the day"
            )


def check_study(config: Mapping, bus_numbers: Iterable[int] | None) -> None:
    """Study-wide checks: values (:func:`check_study_settings`) and the feeder's buses (fleet buses)."""
    check_study_settings(config)
    if bus_numbers is None:
        return
    buses = set(bus_numbers)
    for name, fleet in config["fleets"].items():
        bad = sorted(set(fleet["buses"]) - buses)
        if bad:
            raise ConfigError(
                f"fleets.{name}.buses: {bad} are not buses of the feeder (buses {min(buses)}..{max(buses)})"
            )
    if config["plots"]["bus"] not in buses:
        raise ConfigError(
            f"plots.bus = {config['plots']['bus']} is not a bus of the feeder (buses {min(buses)}..{max(buses)})"
        )
    for k, station in enumerate(config["transport"]["stations"]):
        if station["bus"] not in buses:
            raise ConfigError(
                f"transport.stations[{k}].bus = {station['bus']} is not a bus of the feeder (buses "
                f"{min(buses)}..{max(buses)})"
            )
    for name, day in config["days"].items():
        bad = sorted(int(b) for b in day["load"]["bus_shapes"] if int(b) not in buses)
        if bad:
            raise ConfigError(f"days.{name}.load.bus_shapes: {bad} are not buses of the feeder")


def check_multiobjective(config: Mapping, scenarios: Mapping) -> None:
    """References and choices of the multiobjective section that the schema cannot check."""
    mo = config["multiobjective"]
    for kind, items in (("fronts", mo["fronts"]), ("compromises", mo["compromises"])):
        for name, item in items.items():
            where = f"multiobjective.{kind}.{name}"
            if item["scenario"] not in scenarios:
                raise ConfigError(
                    f"{where}.scenario = {item['scenario']!r} is not a scenario of the study (have {list(scenarios)})"
                )
            if kind == "fronts":
                if item["optimise"] == item["sweep"]:
                    raise ConfigError(
                        f"{where}: optimise and sweep are both {item['sweep']!r}; a front needs two objectives"
                    )
                points = item["points"]
                if not isinstance(points, int) and len({round(float(p), 4) for p in points}) < 2:
                    raise ConfigError(f"{where}.points = {points}: a front needs at least two distinct points")
            elif item["method"] == "fuzzy":
                if len(set(item["objectives"])) < 2:
                    raise ConfigError(
                        f"{where}.objectives = {item['objectives']}: the fuzzy compromise needs at least two objectives"
                    )
                if item["others"] == "weighted":
                    raise ConfigError(
                        f"{where}.others = weighted: a fuzzy compromise minimises a dimensionless membership "
                        "that cannot be weighed against the scenario's $ terms; use others: none"
                    )
                if item["reference"] != "payoff" and item["reference"] not in scenarios:
                    raise ConfigError(
                        f"{where}.reference = {item['reference']!r}: expected payoff or a scenario of the study "
                        f"(have {list(scenarios)})"
                    )
            elif not any(w != 0 for w in item["weights"].values()):
                raise ConfigError(
                    f"{where}.weights = {item['weights']}: a weighted sum needs at least one non-zero weight"
                )


def load_study(config: dict, schema_path: str | Path, source_files: list[str | Path]) -> tuple[dict, dict[str, dict]]:
    """Validate a merged study config and expand its scenarios (what the Snakefile calls).

    ``source_files`` are the YAML files merged into ``config``, in order; they are read again
    only to name the file an error comes from. The feeder's buses are checked without building it
    for built-in feeders; a pandapower JSON network is loaded and checked to be radial here.
    """
    from feederflex.feeders import bus_numbers

    schema = load_yaml(schema_path)
    sources = [(str(f), load_yaml(f)) for f in source_files]
    valid = validate_config(config, schema, sources)
    buses = bus_numbers(valid["network"]["source"])
    check_study(valid, buses)
    scenarios = expand_scenarios(valid, schema, sources, buses)
    if any(settings["dr"] for settings in scenarios.values()):  # needs the feeder's loads: build it only then
        from feederflex.feeders import loaded_buses

        scenarios = expand_scenarios(valid, schema, sources, buses, loaded_buses(valid["network"]["source"]))
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
    from feederflex.kpis import KPI_UNITS

    bad = sorted(set(valid["plots"]["kpis"]) - set(KPI_UNITS))
    if bad:
        raise ConfigError(f"plots.kpis: {bad} are not KPI columns; expected some of {sorted(KPI_UNITS)}")
    return valid, scenarios
