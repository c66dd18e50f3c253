from __future__ import annotations

import textwrap

import pytest

from feederflex import study
from feederflex.study import ConfigError


def _write(tmp_path, text: str):
    path = tmp_path / "study.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _load(root, tmp_path, text: str):
    """Merge a study file over config/config.yaml as the Snakefile does, then load it."""
    files = [root / "config" / "config.yaml", _write(tmp_path, text)]
    return study.load_study(study.merge_study_files(files), root / "config" / "schema.yaml", files)


def test_default_study_has_six_scenarios_with_all_keys(root):
    cfg = study.load_yaml(root / "config" / "config.yaml")
    valid, scenarios = study.load_study(cfg, root / "config" / "schema.yaml", [root / "config" / "config.yaml"])
    assert list(scenarios) == [
        "ev-none_storage-none",
        "ev-none_storage-fess",
        "ev-low_storage-none",
        "ev-low_storage-fess",
        "ev-peak_storage-none",
        "ev-peak_storage-fess",
    ]
    assert scenarios["ev-low_storage-fess"]["ev_fleet"] == "low"
    assert scenarios["ev-low_storage-fess"]["fess"][0]["bus"] == 18
    assert scenarios["ev-none_storage-none"]["fess"] == []
    assert valid["base"]["solver"]["mip_gap"] == 0.001


def test_the_shipped_config_states_every_schema_default(root, schema):
    """config.yaml is the documented default: validation must not need to add anything."""
    cfg = study.load_yaml(root / "config" / "config.yaml")
    filled = study.validate_config(cfg, schema)
    cfg_no_scen = {k: v for k, v in cfg.items()}
    assert filled == cfg_no_scen


def test_defaults_fill_nested_keys(make_config):
    cfg = make_config({"base": {"fess": [{"name": "b", "bus": 5, "p_mw": 1, "e_mwh": 2}]}})
    assert cfg["base"]["fess"][0]["eta_ch"] == 0.95
    assert cfg["base"]["grid"]["v_min_pu"] == 0.95
    assert cfg["days"]["summer"]["pv"]["model"] == "typical"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("base: {grid: {v_mn_pu: 0.9}}", r"study.yaml: base.grid: Additional properties .*'v_mn_pu'.*expected one of"),
        ("base: {solver: {threads: two}}", r"study.yaml: base.solver.threads: 'two' is not of type 'integer'"),
        (
            "base: {pv: [{name: a, bus: 40, p_mw: 1.0}]}",
            r"pv\[0\] \(a\).bus = 40 is not a bus of the feeder \(buses 1..33\)",
        ),
        (
            "base: {pv: [{name: a, bus: 4, p_mw: -1.0}]}",
            r"study.yaml: base.pv\[0\].p_mw: -1.0 is less than the minimum of 0",
        ),
        (
            "scenarios: {list: {x: {grid: {nominal: 1}}}}",
            r"study.yaml: scenarios.list.x: overrides base.grid.nominal, which does not exist",
        ),
        (
            "scenarios: {list: {x: {fess: [{name: b, bus: 3, p_mw: -2, e_mwh: 1}]}}}",
            r"scenarios.list.x \(scenario 'x'\): fess\[0\].p_mw: -2 is less than the minimum",
        ),
        (
            "scenarios: {list: {x: {ev_fleet: huge}}}",
            r"scenarios.list.x \(scenario 'x'\): ev_fleet 'huge' is not defined in fleets",
        ),
        ("base: {day: winter}", r"day 'winter' is not defined in days"),
        ("time: {step_minutes: 7}", r"study.yaml: time.step_minutes: 7 is not one of"),
        ("fleets: {low: {buses: [99]}}", r"fleets.low.buses: \[99\] are not buses of the feeder"),
        (
            "{base: {fess: [{name: b, bus: 3, p_mw: 1, e_mwh: 1, soc_init: 0.95}]}, scenarios: {list: {x: {}}}}",
            r"initial energy outside the SOC window",
        ),
        ("colour: blue", r"study.yaml: \(top level\): Additional properties .*'colour'"),
        (
            "transport: {stations: [{bus: 40, x_km: 0, y_km: 0}]}",
            r"transport.stations\[0\].bus = 40 is not a bus of the feeder",
        ),
        ("transport: {speed_kmh: 0}", r"study.yaml: transport.speed_kmh: 0 is less than or equal to the minimum of 0"),
        (
            "{transport: {stations: [{bus: 3, x_km: 0, y_km: 0}]}, scenarios: {list: {x: {mess: {units: [{name: m, p_mw: 1, e_mwh: 2, initial_station: 3, soc_init: 0.95}]}}}}}",
            r"mess.units\[0\] \(m\): initial energy outside the SOC window",
        ),
        (
            "{transport: {stations: [{bus: 3, x_km: 0, y_km: 0}]}, scenarios: {list: {x: {mess: {units: [{name: m, p_mw: 1, e_mwh: 2, initial_station: 7}]}}}}}",
            r"initial_station = 7 is not one of transport.stations \[3\]",
        ),
        ("fleets: {low: {sampler: nissan}}", r"fleets.low.sampler: 'nissan' is not one of"),
        ("plots: {bus: 99}", r"plots.bus = 99 is not a bus of the feeder"),
        # forecast errors and operation (issue 6): refused when the study is loaded, before any solve
        (
            "uncertainty: {relative_sd: {pv: -0.1}}",
            r"study.yaml: uncertainty.relative_sd.pv: -0.1 is less than the minimum of 0",
        ),
        (
            "uncertainty: {relative_sd: {load: -0.05}}",
            r"study.yaml: uncertainty.relative_sd.load: -0.05 is less than the minimum of 0",
        ),
        (
            "uncertainty: {correlation: 1.0}",
            r"study.yaml: uncertainty.correlation: 1.0 is greater than or equal to the maximum of 1",
        ),
        (
            "uncertainty: {correlation: -0.2}",
            r"study.yaml: uncertainty.correlation: -0.2 is less than the minimum of 0",
        ),
        ("uncertainty: {realisations: 0}", r"study.yaml: uncertainty.realisations: 0 is less than the minimum of 1"),
        ("uncertainty: {batch_size: 0}", r"study.yaml: uncertainty.batch_size: 0 is less than the minimum of 1"),
        (
            "scenarios: {list: {rt: {operation: {mode: rolling, lookahead_steps: 0}}}}",
            r"study.yaml: scenarios.list.rt \(scenario 'rt'\): operation.lookahead_steps: 0 is less than the minimum of 1",
        ),
        (
            "scenarios: {list: {rt: {operation: {mode: rolling, lookahead_steps: 25}}}}",
            r"study.yaml: scenarios.list.rt \(scenario 'rt'\): operation.lookahead_steps = 25 is longer than the day \(24 steps "
            r"of time.step_minutes = 60\) and there is no next-day data; expected 1..24",
        ),
        (
            "{time: {step_minutes: 15}, base: {operation: {mode: rolling, lookahead_steps: 97}}}",
            r"operation.lookahead_steps = 97 is longer than the day \(96 steps",
        ),
        ("base: {operation: {mode: real_time}}", r"study.yaml: base.operation.mode: 'real_time' is not one of"),
        # honest-outcomes issue, item 6: values that were accepted and then misbehaved
        ("study: ..", r"study.yaml: study: '..' does not match"),
        ("study: ../elsewhere", r"study.yaml: study: '../elsewhere' does not match"),
        ("scenarios: {list: {..: {}}}", r"scenarios.list: '..' does not match"),
        ("scenarios: {axes: {..: {x: {}}}}", r"scenarios.axes.*: scenario name '[.][.]-x' is not a plain name"),
        (
            "time: {hours: 5.5, step_minutes: 60}",
            r"time.hours = 5.5 is not a whole number of time.step_minutes = 60 steps",
        ),
        ("days: {summer: {date: '2026-02-30'}}", r"days.summer.date = '2026-02-30' is not a calendar date"),
        (
            "base: {grid: {substation_v_pu: 1.08, v_max_pu: 1.05}}",
            r"grid.substation_v_pu = 1.08 is outside the voltage band",
        ),
        (
            "transport: {stations: [{bus: 3, x_km: 0, y_km: 0}, {bus: 3, x_km: 1, y_km: 0}]}",
            r"transport.stations: bus \[3\] listed more than once",
        ),
        (
            "base: {objective: {fuzzy: {energy_cost_usd: [5.0, 5.0]}}}",
            r"objective.fuzzy.energy_cost_usd = \[5.0, 5.0\]: best and reference are equal",
        ),
        (
            "fleets: {low: {distributions: {commute: {work_arrival_table: [[7.0, 0.5], [8.0, 1.5]]}}}}",
            r"fleets.low.distributions.commute.work_arrival_table\[1\] = \[8.0, 1.5\]: a probability must be in \[0, 1\]",
        ),
        (
            "fleets: {low: {distributions: {commute: {drive_h: [0.5, 30.0]}}}}",
            r"fleets.low.distributions.commute.drive_h\[1\] = 30.0 h is not shorter than the horizon",
        ),
        ("transport: {delay_h: [30.0]}", r"transport.delay_h\[0\] = 30.0 h .* is not shorter than the horizon"),
        ("base: {ev_control: {v2g: true}}", r"ev_control.v2g = true, but the scenario has no ev_fleet"),
        (
            "{time: {hours: 6}, base: {ev_fleet: low, ev_control: {mode: aggregate}}}",
            r"ev_control.mode = aggregate needs a 24-hour \(periodic\) day, but time.hours = 6",
        ),
        (
            "base: {operation: {mode: day_ahead, lookahead_steps: 4}}",
            r"operation.lookahead_steps = 4 is only used by operation.mode = rolling, not 'day_ahead'",
        ),
        (
            "{transport: {stations: [{bus: 3, x_km: 0, y_km: 0}]}, plots: {mess_step: 24}, base: {mess: {units: [{name: m, p_mw: 1, e_mwh: 2, initial_station: 3}]}}}",
            r"plots.mess_step = 24 is beyond the horizon: expected 0..23",
        ),
    ],
)
def test_bad_input_names_the_file_the_key_and_what_was_expected(root, tmp_path, text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        _load(root, tmp_path, text)


def test_error_names_the_base_config_when_the_bad_key_is_there(root, tmp_path, schema):
    cfg = study.load_yaml(root / "config" / "config.yaml")
    cfg["base"]["grid"]["v_min_pu"] = "low"
    with pytest.raises(ConfigError, match=r"config/config.yaml: base.grid.v_min_pu: 'low' is not of type 'number'"):
        study.validate_config(cfg, schema, [("config/config.yaml", cfg), ("study.yaml", {"study": "x"})])


def test_axes_and_list_combine_and_names_are_stable(make_config, schema):
    cfg = make_config(
        {
            "fleets": {"a": {}},
            "scenarios": {
                "list": {"hot": {"grid": {"v_max_pu": 1.06}}},
                "axes": {
                    "ev": {"no": {"ev_fleet": None}, "yes": {"ev_fleet": "a"}},
                    "band": {"std": {}, "tight": {"grid": {"v_min_pu": 0.97}}},
                },
            },
        }
    )
    scenarios = study.expand_scenarios(cfg, schema, bus_numbers=range(1, 34))
    assert list(scenarios) == ["hot", "ev-no_band-std", "ev-no_band-tight", "ev-yes_band-std", "ev-yes_band-tight"]
    assert scenarios["ev-yes_band-tight"]["grid"]["v_min_pu"] == 0.97
    assert scenarios["ev-yes_band-tight"]["grid"]["v_max_pu"] == 1.05
    assert scenarios["hot"]["grid"]["v_max_pu"] == 1.06 and scenarios["hot"]["ev_fleet"] is None


def test_no_scenarios_means_one_base_scenario(make_config, schema):
    assert list(study.expand_scenarios(make_config({}), schema)) == ["base"]


def test_operation_and_uncertainty_default_to_a_deterministic_day_ahead_study(root, tmp_path):
    valid, scenarios = _load(root, tmp_path, "study: plain\n")
    assert valid["uncertainty"]["realisations"] == 1 and valid["uncertainty"]["relative_sd"] == {
        "pv": 0.25,
        "load": 0.1,
        "ev": 0.1,
    }
    assert all(
        s["operation"] == {"mode": "day_ahead", "lookahead_steps": None, "keep_integers": True}
        for s in scenarios.values()
    )
    _, scenarios = _load(root, tmp_path, "scenarios: {list: {rt: {operation: {mode: rolling, lookahead_steps: 24}}}}")
    assert scenarios["rt"]["operation"]["lookahead_steps"] == 24


def test_a_duplicate_key_is_refused_naming_file_line_and_key(root, tmp_path):
    """YAML keeps the last of two equal keys: a study with the same scenario twice lost one silently."""
    text = "scenarios:\n  list:\n    a: {}\n    b: {}\n    a: {grid: {v_min_pu: 0.9}}\n"
    with pytest.raises(
        ConfigError, match=r"study.yaml: line 5: key 'a' appears twice in the same mapping \(first on line 3\)"
    ):
        _load(root, tmp_path, text)


SCHEMA_KEYWORDS = {
    "$schema", "$ref", "$defs", "type", "description", "default", "enum", "const", "pattern", "items",
    "properties", "additionalProperties", "patternProperties", "propertyNames", "required", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "minLength", "maxLength", "minProperties",
    "uniqueItems", "oneOf", "anyOf", "allOf", "not", "if", "then", "else", "prefixItems", "title", "examples",
}  # fmt: skip


def test_the_schema_uses_only_json_schema_keywords(schema):
    """A description with an unquoted comma inside a YAML flow mapping is cut there and its tail
    becomes a key that JSON Schema ignores: every node of the schema must use known keywords only."""
    stray = []

    def walk(node, path):
        if isinstance(node, dict):
            if not path or path[-1] not in ("properties", "$defs", "patternProperties"):
                stray.extend(f"{'.'.join(map(str, path))}: {key!r}" for key in set(node) - SCHEMA_KEYWORDS)
            for key, value in node.items():
                if key not in ("default", "examples", "enum", "const"):  # values, not schemas
                    walk(value, [*path, key])
        elif isinstance(node, list):
            for k, value in enumerate(node):
                walk(value, [*path, k])

    walk(schema, [])
    assert not stray


def test_numbers_in_exponent_form_are_floats(tmp_path):
    """PyYAML (YAML 1.1) reads 1.0e6 and 1e6 as strings; a study file means numbers."""
    path = tmp_path / "study.yaml"
    path.write_text("a: 1.0e6\nb: 1e-3\nc: -2E+2\nd: 1.5\ne: 7\nf: 1e6x\ng: '1e6'\n")
    values = study.load_yaml(path)
    assert values == {"a": 1.0e6, "b": 1e-3, "c": -200.0, "d": 1.5, "e": 7, "f": "1e6x", "g": "1e6"}
    assert all(isinstance(values[k], float) for k in "abcd") and isinstance(values["e"], int)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        # a misspelt key, at the top of the scenario and nested, in list and axes scenarios
        ("scenarios: {list: {x: {gird: {v_min_pu: 0.9}}}}", r"study.yaml: scenarios.list.x: overrides base.gird"),
        (
            "scenarios: {list: {x: {mess: {search: {round: 2}}}}}",
            r"study.yaml: scenarios.list.x: overrides base.mess.search.round, which does not exist; keys there are "
            r"\['candidates', 'departure_every_minutes', 'method', 'rounds', 'time_s', 'unit_time_s'\]",
        ),
        (
            "scenarios: {axes: {band: {tight: {grid: {v_min: 0.97}}}}}",
            r"study.yaml: scenarios.axes.band.tight: overrides base.grid.v_min, which does not exist",
        ),
        # a replaced value against its own sub-schema: types, ranges, enums, required keys of list items
        (
            "scenarios: {list: {x: {grid: {v_min_pu: low}}}}",
            r"study.yaml: scenarios.list.x \(scenario 'x'\): grid.v_min_pu: 'low' is not of type 'number'",
        ),
        (
            "scenarios: {axes: {a: {b: {solver: {threads: 0}}}}}",
            r"scenarios.axes.a.b \(scenario 'a-b'\): solver.threads: 0 is less than the minimum of 1",
        ),
        (
            "scenarios: {list: {x: {operation: {mode: realtime}}}}",
            r"scenarios.list.x \(scenario 'x'\): operation.mode: 'realtime' is not one of",
        ),
        (
            "scenarios: {list: {x: {pv: [{name: a, bus: 4}]}}}",
            r"scenarios.list.x \(scenario 'x'\): pv\[0\]: 'p_mw' is a required property",
        ),
        (
            "scenarios: {list: {x: {pv: [{name: a, bus: 4, p_mw: 1, colour: red}]}}}",
            r"scenarios.list.x \(scenario 'x'\): pv\[0\]: Additional properties .*'colour'",
        ),
        (
            "scenarios: {list: {x: {mess: 3}}}",
            r"scenarios.list.x \(scenario 'x'\): mess: 3 is not of type 'object'",
        ),
        # a free map (term -> value) merged with base's: its key names are checked on the merged map
        (
            "scenarios: {list: {x: {objective: {bounds: {energy_cost: 5.0}}}}}",
            r"scenarios.list.x \(scenario 'x'\): objective.bounds: 'energy_cost' is not one of",
        ),
    ],
)
def test_a_bad_scenario_override_fails_naming_file_scenario_and_key(root, tmp_path, text, pattern):
    """Overrides are validated against the sub-schemas of the keys they set (not the merged
    document per scenario): every mistake is still refused at parse time, named."""
    with pytest.raises(ConfigError, match=pattern):
        _load(root, tmp_path, text)


def test_override_validation_fills_defaults_and_keeps_base_untouched(root, tmp_path):
    """A replaced list gets its items' defaults; scenarios share nothing with base or each other."""
    text = """
        scenarios:
          list:
            a: {pv: [{name: p, bus: 4, p_mw: 1.0}], objective: {bounds: {energy_cost_usd: 5.0}}}
            b: {}
        """
    valid, scenarios = _load(root, tmp_path, text)
    assert scenarios["a"]["pv"][0]["power_factor"] == valid["base"]["pv"][0]["power_factor"]
    assert scenarios["a"]["objective"]["bounds"]["energy_cost_usd"] == 5.0
    assert "energy_cost_usd" not in scenarios["b"]["objective"]["bounds"]
    scenarios["b"]["grid"]["v_min_pu"] = 0.5
    assert valid["base"]["grid"]["v_min_pu"] != 0.5 and scenarios["a"]["grid"]["v_min_pu"] != 0.5


def test_typed_settings_of_the_parse_equal_a_fresh_conversion(root, tmp_path):
    from feederflex.settings import Settings

    files = [root / "config" / "config.yaml"]
    loaded = study.parse_study(study.merge_study_files(files), root / "config" / "schema.yaml", files)
    assert list(loaded.settings) == list(loaded.scenarios)
    for name, settings in loaded.scenarios.items():
        assert loaded.settings[name] == Settings.from_dict(settings)
