"""The solution contract of one scenario, assembled the way the model is: one part per component.

Each ``feederflex.model.<component>.solution`` reads its own block; this module adds the
coordinates, the objective terms and the solver's record. Every decision is NaN when there is
no solution (and the dataset still names the scenario's units and settings).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyomo.environ as pyo
import xarray as xr

from feederflex.model import ScenarioData, dr, ev, mess, network, planning, pv, risk, storage
from feederflex.model.extract import Reader
from feederflex.model.objectives import CATALOGUE, pwl_errors, term_values
from feederflex.solve import SolveResult


def solution_dataset(m: pyo.ConcreteModel | None, data: ScenarioData, result: SolveResult) -> xr.Dataset:
    """The solution dataset of ``m`` as ``result`` left it (``m`` None: no model was built)."""
    solved = result.status.has_solution and m is not None
    read = Reader(m, solved)
    parts: dict[str, xr.Variable] = {}
    for component in (network, pv, storage, mess, ev, dr):
        parts.update(component.solution(read, data))
    parts.update(risk.solution(data, parts))
    parts.update(planning.solution(read, data.candidates))
    settings = data.settings
    fd = data.feeder
    ds = xr.Dataset(
        parts,
        coords={
            "time": data.profiles.time.values,
            "bus": data.buses,
            "branch": [int(b) for b in fd.branch.values],
            "pv": [u.name for u in settings.pv],
            "fess": [u.name for u in settings.fess],
            "mess": [u.name for u in settings.mess.units],
            "dr": [u.name for u in settings.dr],
            "dr_bus": ("dr", np.array([u.bus for u in settings.dr], dtype=int)),
            "pv_bus": ("pv", np.array([u.bus for u in settings.pv], dtype=int)),
            "fess_bus": ("fess", np.array([u.bus for u in settings.fess], dtype=int)),
            "candidate": [c.name for c in data.candidates],
            "candidate_bus": ("candidate", np.array([c.bus for c in data.candidates], dtype=int)),
            "candidate_kind": ("candidate", np.array([c.kind for c in data.candidates], dtype=str)),
            "branch_from_bus": ("branch", fd.from_bus.values),
            "branch_to_bus": ("branch", fd.to_bus.values),
        },
    )
    terms = term_values(m, data) if solved else {name: math.nan for name in CATALOGUE}
    ds.attrs.update(
        {
            "step_hours": data.step_hours,
            "root_bus": data.root,
            "substation_v_pu": float(settings.grid.substation_v_pu),
            "v_min_pu": float(settings.grid.v_min_pu),
            "v_max_pu": float(settings.grid.v_max_pu),
            "currency": str(settings.planning.currency),
            # every scenario's AC check counts violations with this one tolerance, corrected or not
            "ac_tolerance_pu": float(settings.ac_correction.tolerance_pu),
            "units": json.dumps({name: var.attrs["units"] for name, var in parts.items()}),
            "objective_terms": json.dumps(
                {n: {"unit": t.unit, "sense": t.sense, "description": t.description} for n, t in CATALOGUE.items()}
            ),
            **{f"objective_{name}": value for name, value in terms.items()},
        }
    )
    if solved:  # squared terms the solver saw as tangents: how far that was from the exact square
        ds.attrs.update({f"objective_{name}_pwl_error": value for name, value in pwl_errors(m, data).items()})
    ds.attrs.update({f"solver_{key}": value for key, value in result.attrs().items()})
    return ds


def add_vehicle_schedules(
    ds: xr.Dataset, m: pyo.ConcreteModel, data: ScenarioData, result: SolveResult, individual: np.ndarray
) -> None:
    """Add the per-vehicle part of a coordinated EV schedule (:func:`feederflex.model.ev.vehicle_solution`)."""
    parts = ev.vehicle_solution(m, data, result.status.has_solution, individual)
    ds.update(parts)
    ds.attrs["ev_unmet_mwh"] = float(np.sum(parts["ev_unmet_kwh"].values)) / 1000
