"""AC check of a solved schedule: a pandapower Newton-Raphson power flow of every step.

Net injections per bus come from the solution (load + EV + storage charging - storage discharge -
PV, reactive load), the substation holds the scenario's voltage. Results are compared with the
LinDistFlow voltages the model claimed.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from feederflex.feeders import run_ac, to_pandapower

AC_UNITS = {
    "v_ac_pu": "pu",
    "v_error_pu": "pu (LinDistFlow - AC)",
    "loss_mw": "MW",
    "p_grid_ac_mw": "MW (import positive)",
    "v_ac_under_pu": "pu",
    "v_ac_over_pu": "pu",
    "converged": "1 if the power flow converged",
    "loss_branch_mw": "MW",
    "loss_branch_mvar": "Mvar",
}


def net_injections(solution: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Net load per step and bus (MW, Mvar): loads + EVs + demand response + storage charging - discharge - PV.

    Mobile units count at the bus of the station they are parked at; their reactive power is
    injected there. PV and fixed-storage inverters inject their reactive power at their buses;
    demand response changes its bus's active and reactive load.
    """
    buses = solution.bus.values
    p = solution.load_p_mw.values + solution.ev_p_mw.values  # losses come from the AC flow itself
    q = solution.load_q_mvar.values.copy()

    def add_units(values: xr.DataArray, unit_bus: xr.DataArray, sign: float, target: np.ndarray = p) -> None:
        for k in range(values.sizes[values.dims[1]]):
            col = int(np.flatnonzero(buses == int(unit_bus.values[k]))[0])
            target[:, col] += sign * values.values[:, k]

    add_units(solution.pv_p_mw, solution.pv_bus, -1.0)
    add_units(solution.fess_p_ch_mw, solution.fess_bus, 1.0)
    add_units(solution.fess_p_dis_mw, solution.fess_bus, -1.0)
    if "pv_q_mvar" in solution:  # solutions from before reactive inverter control have none
        add_units(solution.pv_q_mvar, solution.pv_bus, -1.0, q)
        add_units(solution.fess_q_mvar, solution.fess_bus, -1.0, q)
    if "dr" in solution.dims and solution.sizes["dr"]:
        add_units(solution.dr_p_mw, solution.dr_bus, 1.0)
        add_units(solution.dr_q_mvar, solution.dr_bus, 1.0, q)
    if "mess" in solution.dims and solution.sizes["mess"]:
        station = solution.mess_station.values
        net_p = solution.mess_p_ch_mw.values - solution.mess_p_dis_mw.values
        for t, k in zip(*np.nonzero(station >= 0), strict=True):
            col = int(np.flatnonzero(buses == station[t, k])[0])
            p[t, col] += net_p[t, k]
            q[t, col] -= solution.mess_q_mvar.values[t, k]
    return p, q


def ac_check(feeder: xr.Dataset, solution: xr.Dataset, tolerance_pu: float | None = None, net=None) -> xr.Dataset:
    """Run the AC power flow of every step of ``solution`` on ``feeder``.

    Returns ``v_ac_pu(time, bus)``, ``v_error_pu`` (LinDistFlow minus AC), ``loss_mw(time)`` and
    per branch, ``p_grid_ac_mw(time)``, AC under- and overvoltage beyond the band (pu) and, in
    ``attrs``, the largest |v_pu - v_ac_pu|, AC violation counts (bus-steps beyond the band by
    more than ``tolerance_pu``) and pu x h, and the "unexpected" ones: AC violations where the
    model's slacks say the band holds. A solution without a schedule gives NaN and its status.
    ``net``: the feeder's pandapower net at the solution's substation voltage, when the caller
    checks many schedules of one feeder (building it costs more than a power flow); its loads are overwritten.
    """
    if tolerance_pu is None:
        tolerance_pu = float(solution.attrs.get("ac_tolerance_pu", 1e-4))
    nt, nb = solution.sizes["time"], solution.sizes["bus"]
    v_ac = np.full((nt, nb), np.nan)
    loss = np.full(nt, np.nan)
    p_grid = np.full(nt, np.nan)
    converged = np.zeros(nt, dtype=int)
    nbr = feeder.sizes["branch"]
    loss_p = np.full((nt, nbr), np.nan)
    loss_q = np.full((nt, nbr), np.nan)
    status = solution.attrs.get("solver_status", "unknown")
    has_schedule = status in ("optimal", "feasible")
    if has_schedule:
        net = to_pandapower(feeder, float(solution.attrs["substation_v_pu"])) if net is None else net
        order = [int(net.bus.name[net.load.bus[i]]) for i in net.load.index]
        col = [int(np.flatnonzero(solution.bus.values == b)[0]) for b in order]
        p, q = net_injections(solution)
        bus_col = [int(np.flatnonzero(solution.bus.values == int(name))[0]) for name in net.bus.name]
        for t in range(nt):
            net.load["p_mw"] = p[t, col]
            net.load["q_mvar"] = q[t, col]
            try:
                run_ac(net)
            except Exception:  # a diverged step is recorded as such
                continue
            converged[t] = 1
            v_ac[t, bus_col] = net.res_bus.vm_pu.values
            loss[t] = float(net.res_line.pl_mw.sum())
            loss_p[t] = net.res_line.pl_mw.values  # lines were created in branch order
            loss_q[t] = net.res_line.ql_mvar.values
            p_grid[t] = float(net.res_ext_grid.p_mw.sum())
    v_min, v_max = float(solution.attrs["v_min_pu"]), float(solution.attrs["v_max_pu"])
    under = np.clip(v_min - v_ac, 0, None)
    over = np.clip(v_ac - v_max, 0, None)
    dt = float(solution.attrs["step_hours"])
    error = solution.v_pu.values - v_ac
    admitted_under = solution.v_under_pu.values > 1e-6
    admitted_over = solution.v_over_pu.values > 1e-6
    unexpected = ((under > tolerance_pu) & ~admitted_under) | ((over > tolerance_pu) & ~admitted_over)
    ds = xr.Dataset(
        {
            "v_ac_pu": (("time", "bus"), v_ac),
            "v_error_pu": (("time", "bus"), error),
            "loss_mw": ("time", loss),
            "p_grid_ac_mw": ("time", p_grid),
            "v_ac_under_pu": (("time", "bus"), under),
            "v_ac_over_pu": (("time", "bus"), over),
            "converged": ("time", converged),
            "loss_branch_mw": (("time", "branch"), loss_p),
            "loss_branch_mvar": (("time", "branch"), loss_q),
        },
        coords={"time": solution.time.values, "bus": solution.bus.values, "branch": feeder.branch.values},
    )
    for name, unit in AC_UNITS.items():
        ds[name].attrs["units"] = unit
    ds.attrs.update(
        {
            "solver_status": status,
            "step_hours": dt,
            "v_min_pu": v_min,
            "v_max_pu": v_max,
            "tolerance_pu": tolerance_pu,
            "max_abs_v_error_pu": float(np.nanmax(np.abs(error))) if has_schedule else np.nan,
            "ac_violation_bus_steps": int(((under > tolerance_pu) | (over > tolerance_pu)).sum()),
            "ac_violation_pu_h": float(np.nansum(under + over) * dt),
            "ac_unexpected_violation_bus_steps": int(unexpected.sum()),
            "ac_unexpected_violation_pu_h": float(np.nansum(np.where(unexpected, under + over, 0.0)) * dt),
            # a day with a diverged step has no loss total: a partial sum would pass for one
            "loss_mwh": float(np.sum(loss) * dt) if has_schedule and converged.all() else np.nan,
            "steps_converged": int(converged.sum()),
            "ac_nonconverged_steps": int(nt - converged.sum()) if has_schedule else 0,
        }
    )
    if has_schedule and not converged.all():
        ds.attrs["ac_nonconverged_note"] = (
            f"the AC power flow diverged at steps {np.flatnonzero(converged == 0).tolist()}: their voltages and "
            "losses are NaN, the day's losses are NaN, and the schedule is not AC-verified there"
        )
    return ds
