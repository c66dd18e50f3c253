"""Assemble the blocks a scenario asks for into one Pyomo model."""

from __future__ import annotations

import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC

from feederflex.model.data import ScenarioData
from feederflex.model.dr import add_dr
from feederflex.model.ev import add_ev
from feederflex.model.mess import add_mess
from feederflex.model.network import add_network
from feederflex.model.objectives import add_objectives
from feederflex.model.planning import add_planning
from feederflex.model.pv import add_pv
from feederflex.model.risk import add_risk
from feederflex.model.storage import add_fess


def build_model(data: ScenarioData) -> pyo.ConcreteModel:
    """Build the scenario model: the planning decisions, PV, fixed and mobile storage, EV, demand
    response blocks, then the network that balances them, the forecast-risk terms and the objective.

    Python's cyclic garbage collector is paused meanwhile, as Pyomo's writers do: the build creates
    hundreds of thousands of small objects, and the collector's passes over them took more than half
    of the build (benchmarks/README.md, issue 17)."""
    with PauseGC():
        return _build(data)


def _build(data: ScenarioData) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel(name="feederflex")
    p_inj: dict = {}
    q_inj: dict = {}
    add_planning(m, data.candidates, data.settings.planning)
    add_pv(m, data, p_inj, q_inj)
    add_fess(m, data, p_inj, q_inj)
    add_mess(m, data, p_inj, q_inj)
    add_ev(m, data, p_inj, q_inj)
    add_dr(m, data, p_inj, q_inj)
    add_network(m, data, p_inj, q_inj)
    add_risk(m, data)
    add_objectives(m, data)
    return m
