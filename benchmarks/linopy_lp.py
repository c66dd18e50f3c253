"""The ieee33_lp rung's linear program written with linopy: the modelling-overhead reference.

The same LinDistFlow LP as feederflex.model (network + PV, no storage, no EVs): flows, squared
voltages with band slacks, import/export at the substation, PV up to availability; objective
-w_pv x PV used + energy cost + w_v x voltage slacks, from the scenario's weights. Vectorised: incidence
arrays times variables, one constraint group per kind. Used by benchmarks/run.py --linopy; the objective must
equal Pyomo's (checked by tests/test_benchmarks.py when linopy is installed).
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from feederflex.model import ScenarioData


def build_linopy(data: ScenarioData):
    import linopy

    fd, grid = data.feeder, data.settings.grid
    weights = data.settings.objective.weights
    s_base = float(fd.attrs["s_base_mva"])
    dt = data.step_hours
    steps = pd.RangeIndex(len(data.steps), name="time")
    branches = [int(b) for b in fd.branch.values]
    parent = dict(zip(branches, fd.from_bus.values.astype(int), strict=True))
    child = dict(zip(branches, fd.to_bus.values.astype(int), strict=True))
    r = dict(zip(branches, fd.r_pu.values, strict=True))
    x = dict(zip(branches, fd.x_pu.values, strict=True))
    buses, root = data.buses, data.root
    non_root = pd.Index([b for b in buses if b != root], name="bus")
    units = data.settings.pv
    load_p = xr.DataArray(data.profiles.load_p_mw.values, coords=[steps, pd.Index(buses, name="bus")])
    load_q = xr.DataArray(data.profiles.load_q_mvar.values, coords=[steps, pd.Index(buses, name="bus")])
    avail = xr.DataArray(
        [[u.p_mw * a for a in data.profiles.pv_avail_pu.values] for u in units],
        coords=[pd.Index([u.name for u in units], name="pv"), steps],
    )
    price = xr.DataArray(data.profiles.price_usd_per_mwh.values, coords=[steps])

    m = linopy.Model()
    p = m.add_variables(coords=[pd.Index(branches, name="branch"), steps], name="p_mw")
    q = m.add_variables(coords=[pd.Index(branches, name="branch"), steps], name="q_mvar")
    w = m.add_variables(lower=0.5, upper=1.6, coords=[pd.Index(buses, name="bus"), steps], name="w")
    s_under = m.add_variables(lower=0, coords=[non_root, steps], name="s_under")
    s_over = m.add_variables(lower=0, coords=[non_root, steps], name="s_over")
    inf = float("inf")
    p_import = m.add_variables(
        lower=0,
        upper=inf if grid.max_import_mw is None else float(grid.max_import_mw),
        coords=[steps],
        name="p_import",
    )
    p_export = m.add_variables(
        lower=0,
        upper=inf if grid.max_export_mw is None else float(grid.max_export_mw),
        coords=[steps],
        name="p_export",
    )
    pv = m.add_variables(lower=0, upper=avail, name="pv_p_mw")
    # incidence as arrays: the branch into each non-root bus, the branches out of each bus, PV per bus
    branch_idx = pd.Index(branches, name="branch")
    bus_idx = pd.Index(buses, name="bus")
    into = xr.DataArray(
        [[1.0 if child[br] == b else 0.0 for br in branches] for b in non_root], coords=[non_root, branch_idx]
    )
    out = xr.DataArray(
        [[1.0 if parent[br] == b else 0.0 for br in branches] for b in buses], coords=[bus_idx, branch_idx]
    )
    at = xr.DataArray([[1.0 if u.bus == b else 0.0 for u in units] for b in buses], coords=[bus_idx, avail.pv])
    flow_p = (out * p).sum("branch")
    flow_q = (out * q).sum("branch")
    gen = (at * pv).sum("pv")
    m.add_constraints(
        (into * p).sum("branch") - flow_p.sel(bus=non_root) + gen.sel(bus=non_root) == load_p.sel(bus=non_root),
        name="p_balance",
    )
    m.add_constraints((into * q).sum("branch") - flow_q.sel(bus=non_root) == load_q.sel(bus=non_root), name="q_balance")
    # voltage drop on each branch: w_child - w_parent + 2 (r p + x q) / s_base = 0
    to_child = xr.DataArray(
        [[1.0 if child[br] == b else 0.0 for b in buses] for br in branches], coords=[branch_idx, bus_idx]
    )
    from_parent = xr.DataArray(
        [[1.0 if parent[br] == b else 0.0 for b in buses] for br in branches], coords=[branch_idx, bus_idx]
    )
    r_da = xr.DataArray([r[br] for br in branches], coords=[branch_idx])
    x_da = xr.DataArray([x[br] for br in branches], coords=[branch_idx])
    m.add_constraints(
        ((to_child - from_parent) * w).sum("bus") + 2 * (r_da * p + x_da * q) / s_base == 0, name="voltage_drop"
    )
    m.add_constraints(
        p_import - p_export - flow_p.sel(bus=root) + gen.sel(bus=root) == load_p.sel(bus=root), name="substation"
    )
    m.add_constraints(w.sel(bus=root) == float(grid.substation_v_pu) ** 2, name="slack_voltage")
    v_min, v_max = float(grid.v_min_pu), float(grid.v_max_pu)
    w_nr = w.sel(bus=non_root)
    m.add_constraints(w_nr + 2 * v_min * s_under >= v_min**2, name="v_lower")
    m.add_constraints(w_nr - 2 * v_max * s_over <= v_max**2, name="v_upper")
    export_factor = float(grid.export_price_factor)
    m.add_objective(
        -float(weights["pv_used_mwh"]) * dt * pv.sum()
        + float(weights["energy_cost_usd"]) * dt * (price * p_import - export_factor * price * p_export).sum()
        + float(weights["voltage_violation_pu_h"]) * dt * (s_under.sum() + s_over.sum())
    )
    return m
