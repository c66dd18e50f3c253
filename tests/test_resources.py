"""Job resources: the model-size formula tracks the built model, and estimates grow as they should."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from feederflex.model import ScenarioData, build_model
from feederflex.model.size import model_scale
from feederflex.resources import BASE_MEM_MB, JobResources
from feederflex.settings import as_settings

FESS = {"name": "b", "bus": 18, "p_mw": 1.0, "e_mwh": 2.0, "soc_init": 0.5}
PV = {"name": "p", "bus": 25, "p_mw": 1.0}


@pytest.mark.parametrize(
    ("base", "step_minutes"),
    [({}, 60), ({"fess": [FESS]}, 60), ({"fess": [FESS, {**FESS, "name": "c", "bus": 30}], "pv": [PV]}, 60), ({}, 30)],
)
def test_model_scale_tracks_the_built_models_columns(make_scenario, feeder33, base, step_minutes):
    """Columns per unit of model_scale stay within a factor 2 of the plain feeder's, whatever is added."""
    ratios = []
    for b, minutes in (({}, 60), (base, step_minutes)):
        settings, prof, _ = make_scenario(base=b, step_minutes=minutes)
        m = build_model(ScenarioData(feeder33, prof, settings))
        scale = model_scale(as_settings(settings), buses=feeder33.sizes["bus"], steps=prof.sizes["time"], stations=0)
        ratios.append(m.nvariables() / scale)
    assert 0.5 < ratios[1] / ratios[0] < 2.0


def _resources(make_config, base: dict | None = None, **study) -> JobResources:
    cfg = make_config({"base": base or {}, **study})
    return JobResources(cfg, {"base": cfg["base"]}, buses=33)


def test_estimates_grow_with_the_attempt_the_units_and_the_time_limit(make_config):
    plain = _resources(make_config)
    job = SimpleNamespace(scenario="base")
    assert plain.solve_mem_mb(job, 2) == pytest.approx(2 * plain.solve_mem_mb(job, 1), abs=1)
    assert plain.solve_runtime(job, 3) >= 3 * plain.solve_runtime(job, 1) - 2
    units = len(plain.study["base"]["fess"]) + 3
    bigger = _resources(make_config, {"fess": [{**FESS, "name": f"b{k}"} for k in range(units)]})
    assert bigger.solve_mem_mb(job, 1) > plain.solve_mem_mb(job, 1)
    slower = _resources(make_config, {"solver": {"time_limit_s": 3600}})
    assert slower.solve_runtime(job, 1) > plain.solve_runtime(job, 1) + 60
    assert plain.small_mem_mb(job, 1) == BASE_MEM_MB


def test_front_points_are_sized_by_their_scenario_and_take_two_stages(make_config):
    cfg = make_config(
        {
            "base": {"solver": {"time_limit_s": 600}},
            "multiobjective": {
                "lexicographic": True,
                "fronts": {"f": {"scenario": "base", "optimise": "pv_used_mwh", "sweep": "energy_cost_usd"}},
            },
        }
    )
    res = JobResources(cfg, {"base": cfg["base"]}, buses=33)
    single = res.solve_runtime(SimpleNamespace(scenario="base"), 1)
    point = res.solve_runtime(SimpleNamespace(front="f", fraction="0.5000"), 1)
    assert point > 1.8 * (single - 5)


def test_a_rolling_batch_is_sized_by_its_realisations(make_config):
    res = _resources(make_config, uncertainty={"realisations": 5, "batch_size": 4})
    full = res.rolling_runtime(SimpleNamespace(scenario="base", batch="0"), 1)
    last = res.rolling_runtime(SimpleNamespace(scenario="base", batch="1"), 1)  # one realisation
    assert full > last
