"""Key performance indicators of a solved (and AC-checked) scenario, and the study summary."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import xarray as xr

# statuses of a written schedule (feederflex.solve.SolveStatus.has_solution; kept here so that
# reading results does not import the solver stack)
SCHEDULED = ("optimal", "feasible", "rules")

KPI_UNITS = {
    "status": "",
    "termination": "",
    "mip_gap": "fraction",
    "solve_seconds": "s (HiGHS, summed over every solver stage)",
    "wall_seconds": "s (wall time of every solver stage, summed)",
    "ac_nonconverged_steps": "count (steps whose AC power flow diverged)",
    "build_seconds": "s",
    "objective": "$",
    "model_violation_bus_steps": "count",
    "model_violation_pu_h": "pu h",
    "ac_violation_bus_steps": "count",
    "ac_violation_pu_h": "pu h",
    "ac_unexpected_violation_bus_steps": "count (AC violations the model's slacks do not admit)",
    "ac_unexpected_violation_pu_h": "pu h",
    "ac_correction_status": "",
    "ac_correction_iterations": "count",
    "v_min_pu": "pu",
    "v_max_pu": "pu",
    "v_ac_min_pu": "pu",
    "v_ac_max_pu": "pu",
    "pv_available_mwh": "MWh",
    "pv_curtailed_mwh": "MWh",
    "pv_curtailed_pct": "%",
    "ev_energy_mwh": "MWh",
    "ev_unmet_mwh": "MWh",
    "energy_cost_usd": "$",
    "storage_cost_usd": "$",
    "mess_transfer_cost_usd": "$",
    "mess_moves": "count",
    "mess_km": "km",
    "ac_losses_mwh": "MWh",
    "peak_import_mw": "MW",
    "peak_import_ac_mw": "MW",
    "max_abs_v_error_pu": "pu",
    "max_loading_pct": "% (largest AC branch loading: lines of max_i_ka, transformers of sn_mva)",
    "pv_local_consumption_pct": "% (001 eq. 2 read as: PV used and not exported over PV available, 6-19 h)",
    "voltage_offset_ac": "1 (001 eq. 20-21 on the AC voltages, x step hours)",
    "model_overload_mva_h": "MVA h (branch flow beyond the rating the model's slacks admit)",
    "voltage_offset": "1 (001 eq. 20)",
    "load_variance_mw2": "MW^2 (003 eq. 11)",
    "power_deviation_mw2": "MW^2 (003 eq. 12)",
    "v_ac_range_pu": "pu (highest - lowest AC voltage over buses and steps)",
    "voltage_deviation_pu2": "pu^2 (003 eq. 6: sum of squared step-to-step AC voltage changes, at "
    "the bus where it is largest)",
    "dr_curtailed_mwh": "MWh",
    "dr_shifted_mwh": "MWh",
    "risk_epns_mwh": "MWh (expected PV and DR power not served, exact)",
    "risk_epc_mwh": "MWh (expected PV and DR curtailment, exact)",
    "planning_cost": "currency/yr (001 eq. 13, in the solution's currency; 0 without planning)",
    "planning_built_units": "count (planning candidates built)",
    "planning_built_mw": "MW (power rating of the planning candidates built)",
    "planning_sites": "bus:MW of the candidates built (f = fixed, m = mobile; m@s = moving, starting at station s)",
}


def scenario_kpis(solution: xr.Dataset, ac: xr.Dataset, tolerance_pu: float = 1e-4) -> dict[str, float | str]:
    """KPIs of one scenario; numbers are NaN when the scenario has no schedule."""
    attrs = solution.attrs
    dt = float(attrs["step_hours"])
    v_min, v_max = float(attrs["v_min_pu"]), float(attrs["v_max_pu"])
    v = solution.v_pu.values
    under = np.clip(v_min - v, 0, None)
    over = np.clip(v - v_max, 0, None)
    solved = attrs["solver_status"] in SCHEDULED
    nan = math.nan
    pv_avail = float(solution.pv_avail_mw.sum()) * dt
    curtailed = float((solution.pv_avail_mw - solution.pv_p_mw).sum()) * dt if solved else nan
    return {
        "status": attrs["solver_status"],
        "termination": attrs["solver_termination"],
        "mip_gap": float(attrs["solver_mip_gap"]),
        "solve_seconds": float(attrs["solver_solve_seconds"]),
        "wall_seconds": float(attrs.get("solver_wall_seconds", nan)),
        "build_seconds": float(attrs.get("build_seconds", nan)),
        "objective": float(attrs["solver_objective"]) if solved else nan,
        "model_violation_bus_steps": int(((under > tolerance_pu) | (over > tolerance_pu)).sum()) if solved else nan,
        "model_violation_pu_h": float((under + over).sum() * dt) if solved else nan,
        "ac_violation_bus_steps": int(ac.attrs["ac_violation_bus_steps"]) if solved else nan,
        "ac_violation_pu_h": float(ac.attrs["ac_violation_pu_h"]) if solved else nan,
        "ac_unexpected_violation_bus_steps": int(ac.attrs["ac_unexpected_violation_bus_steps"]) if solved else nan,
        "ac_unexpected_violation_pu_h": float(ac.attrs["ac_unexpected_violation_pu_h"]) if solved else nan,
        "ac_nonconverged_steps": int(ac.attrs.get("ac_nonconverged_steps", 0)) if solved else nan,
        "ac_correction_status": attrs.get("ac_correction_status", "disabled"),
        "ac_correction_iterations": int(attrs.get("ac_correction_iterations", 0)),
        "v_min_pu": float(np.min(v)) if solved else nan,
        "v_max_pu": float(np.max(v)) if solved else nan,
        "v_ac_min_pu": float(np.nanmin(ac.v_ac_pu.values)) if solved else nan,
        "v_ac_max_pu": float(np.nanmax(ac.v_ac_pu.values)) if solved else nan,
        "pv_available_mwh": pv_avail,
        "pv_curtailed_mwh": curtailed,
        "pv_curtailed_pct": 100 * curtailed / pv_avail if pv_avail > 0 else 0.0,
        "ev_energy_mwh": float(solution.ev_p_mw.sum()) * dt,
        "ev_unmet_mwh": float(attrs.get("ev_unmet_mwh", 0.0)),
        "energy_cost_usd": float(attrs["objective_energy_cost_usd"]),
        "storage_cost_usd": float(attrs["objective_storage_cost_usd"]),
        "mess_transfer_cost_usd": float(attrs["objective_mess_transfer_cost_usd"]),
        "mess_moves": float(solution.mess_moves.sum()) if solved else nan,
        "mess_km": float(solution.mess_km.sum()) if solved else nan,
        "ac_losses_mwh": float(ac.attrs["loss_mwh"]) if solved else nan,
        "peak_import_mw": float(np.max(solution.p_grid_mw.values)) if solved else nan,
        "peak_import_ac_mw": float(np.nanmax(ac.p_grid_ac_mw.values)) if solved else nan,
        "max_abs_v_error_pu": float(ac.attrs["max_abs_v_error_pu"]) if solved else nan,
        "max_loading_pct": float(ac.attrs.get("max_loading_pct", nan)) if solved else nan,
        "pv_local_consumption_pct": pv_local_consumption_pct(solution) if solved else nan,
        "voltage_offset_ac": voltage_offset(ac.v_ac_pu.values, v_min, v_max, dt) if solved else nan,
        "model_overload_mva_h": float(solution.branch_overload_mva.sum()) * dt
        if solved and "branch_overload_mva" in solution
        else nan,
        **{
            name: float(attrs.get(f"objective_{name}", nan))
            for name in ("voltage_offset", "load_variance_mw2", "power_deviation_mw2")
        },
        "v_ac_range_pu": float(np.nanmax(ac.v_ac_pu.values) - np.nanmin(ac.v_ac_pu.values)) if solved else nan,
        "voltage_deviation_pu2": float(np.max(np.sum(np.diff(ac.v_ac_pu.values, axis=0) ** 2, axis=0)))
        if solved
        else nan,
        **_resource_kpis(solution, dt, solved),
        **_planning_kpis(solution, solved),
    }


def _planning_kpis(solution: xr.Dataset, solved: bool) -> dict[str, float | str]:
    """What a planning scenario built (001 Table 1's sites and sizes) and its annual cost."""
    cost = float(solution.attrs.get("objective_planning_cost", 0.0))
    if "plan_built" not in solution or not solution.sizes.get("candidate", 0):
        return {"planning_cost": cost, "planning_built_units": 0, "planning_built_mw": 0.0, "planning_sites": ""}
    if not solved:
        return {
            "planning_cost": math.nan,
            "planning_built_units": math.nan,
            "planning_built_mw": math.nan,
            "planning_sites": "",
        }
    built = solution.plan_built.values > 0.5
    kinds, buses, p_mw = solution.candidate_kind.values, solution.candidate_bus.values, solution.plan_p_mw.values
    names = [str(c) for c in solution.candidate.values]
    starts = dict(zip(map(str, solution.mess.values), solution.mess_initial_station.values, strict=True))
    # a moving unit (bus -1) is named by the station it starts at: m@12
    where = [f"{b}" if b >= 0 else f"@{starts[n]}" for n, b in zip(names, buses, strict=True)]
    sites = " ".join(f"{k[0]}{w}:{p:.4f}" for k, w, p, on in zip(kinds, where, p_mw, built, strict=True) if on)
    return {
        "planning_cost": cost,
        "planning_built_units": int(built.sum()),
        "planning_built_mw": float(p_mw[built].sum()),
        "planning_sites": sites,
    }


def pv_local_consumption_pct(solution: xr.Dataset, start_h: float = 6.0, end_h: float = 19.0) -> float:
    """001's PV on-site absorption rate (eq. 2), read as the PV energy used inside the feeder over the
    PV energy available, over the steps that start from ``start_h`` to before ``end_h``.

    The printed eq. 2 sums (P_PV - P_load - P_ESS) / P_PV per hour, which is the share left over,
    not absorbed, and is not bounded by 100 %. Here a step's PV used locally is the PV used (after
    curtailment) minus what the substation exports in that step (PV cannot be used locally when
    the feeder sends power up), at least 0; available PV includes what is curtailed.
    """
    hours = (solution.time.dt.hour + solution.time.dt.minute / 60).values
    window = (hours >= start_h) & (hours < end_h)
    available = solution.pv_avail_mw.values.sum(axis=1)[window]
    if available.sum() <= 0:
        return math.nan
    used = solution.pv_p_mw.values.sum(axis=1)[window]
    export = np.clip(-solution.p_grid_mw.values[window], 0.0, None)
    return float(100 * np.clip(used - export, 0.0, None).sum() / available.sum())


def voltage_offset(v_pu: np.ndarray, v_min: float, v_max: float, step_hours: float) -> float:
    """001 eq. 20-21: the sum over steps and buses of (the voltage outside the band / band width)^2,
    times the step length (hours), of voltages ``v_pu`` (time, bus); NaN where a step diverged."""
    outside = np.clip(v_min - v_pu, 0.0, None) + np.clip(v_pu - v_max, 0.0, None)
    if np.isnan(outside).any():
        return math.nan
    return float(((outside / (v_max - v_min)) ** 2).sum() * step_hours)


def _resource_kpis(solution: xr.Dataset, dt: float, solved: bool) -> dict[str, float]:
    """Demand response and forecast-risk KPIs (0 for solutions without those variables)."""

    def total(*names: str) -> float:
        if not solved:
            return math.nan
        return float(sum(float(solution[n].sum()) for n in names if n in solution) * dt)

    return {
        "dr_curtailed_mwh": total("dr_p_curtail_mw"),
        "dr_shifted_mwh": total("dr_p_down_mw"),
        "risk_epns_mwh": total("pv_epns_mw", "dr_epns_mw"),
        "risk_epc_mwh": total("pv_epc_mw", "dr_epc_mw"),
    }


SUMMARY_VARIABLES = ("v_pu", "p_grid_mw", "pv_p_mw", "pv_avail_mw", "ev_p_mw", "load_p_mw")


def summarize(solutions: dict[str, xr.Dataset], acs: dict[str, xr.Dataset]) -> tuple[xr.Dataset, pd.DataFrame]:
    """One dataset over all scenarios (dimension ``scenario``) and the KPI table (one row each).

    Per-unit variables (PV, storage) differ between scenarios, so the summary holds the
    bus- and time-resolved variables every scenario has, plus the AC voltages and losses, and
    every KPI as a ``kpi_*`` variable over ``scenario``.
    """
    names = list(solutions)
    table = pd.DataFrame([scenario_kpis(solutions[n], acs[n]) for n in names], index=pd.Index(names, name="scenario"))
    parts = []
    for name in names:
        sol, ac = solutions[name], acs[name]
        part = xr.Dataset(
            {
                "v_pu": sol.v_pu,
                "p_grid_mw": sol.p_grid_mw,
                "pv_p_mw": sol.pv_p_mw.sum("pv"),
                "pv_avail_mw": sol.pv_avail_mw.sum("pv"),
                "fess_p_net_mw": (sol.fess_p_dis_mw - sol.fess_p_ch_mw).sum("fess"),
                "mess_p_net_mw": (sol.mess_p_dis_mw - sol.mess_p_ch_mw).sum("mess"),
                "ev_p_mw": sol.ev_p_mw.sum("bus"),
                "load_p_mw": sol.load_p_mw.sum("bus"),
                "v_ac_pu": ac.v_ac_pu,
                "loss_mw": ac.loss_mw,
            }
        )
        parts.append(part.expand_dims(scenario=[name]))
    ds = xr.concat(parts, dim="scenario", join="outer")
    first = solutions[names[0]].attrs
    ds.attrs.update({key: first[key] for key in ("step_hours", "v_min_pu", "v_max_pu")})
    for column in table.columns:
        values = table[column].to_numpy()
        ds[f"kpi_{column}"] = ("scenario", values.astype(str) if values.dtype == object else values.astype(float))
        ds[f"kpi_{column}"].attrs["units"] = KPI_UNITS[column]
    ds["p_grid_mw"].attrs["units"] = "MW (import positive)"
    ds["fess_p_net_mw"].attrs["units"] = "MW (discharge positive), all fixed batteries"
    ds["pv_p_mw"].attrs["units"] = "MW, all PV units"
    ds["mess_p_net_mw"].attrs["units"] = "MW (discharge positive), all mobile units"
    return ds, table


MC_STATISTICS = ("mean", "p5", "p95")


def monte_carlo_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and 5th / 95th percentiles (numpy's linear interpolation) of every numeric KPI over the
    realisations of each scenario and operation, the operations side by side.

    ``rows`` has one row per (scenario, realisation, operation). The statistics of every operation
    of a scenario are taken over the same realisations: those where every operation has a schedule
    (status optimal or feasible), so that the columns compare like with like. Returns one row per
    (scenario, operation, statistic) with, in front of the KPI columns, ``realisations`` (how many
    there are), ``used`` (how many enter the statistics), ``left_out`` and ``left_out_why``
    (realisation: operation status, for each one left out), and how many of this operation's used
    days are ``optimal`` and ``feasible``.
    """
    numeric = [
        c
        for c in rows.columns
        if c not in ("scenario", "operation", "realisation") and pd.api.types.is_numeric_dtype(rows[c])
    ]
    out = []
    for scenario, runs in rows.groupby("scenario", sort=False):
        solved = runs["status"].isin(SCHEDULED)
        complete = solved.groupby(runs["realisation"]).all()
        keep = set(complete.index[complete])
        why = "; ".join(
            f"r{int(k)}: "
            + ", ".join(f"{op} {st}" for op, st in zip(g.operation, g.status, strict=True) if st not in SCHEDULED)
            for k, g in runs[~runs["realisation"].isin(keep)].groupby("realisation")
        )
        for operation, group in runs.groupby("operation", sort=False):
            used = group[group["realisation"].isin(keep)]
            values = used[numeric].to_numpy(dtype=float)
            with warnings.catch_warnings():  # no realisation left, or a KPI NaN in every one: NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                empty = values.shape[0] == 0
                stats = {
                    "mean": np.full(len(numeric), np.nan) if empty else np.nanmean(values, axis=0),
                    "p5": np.full(len(numeric), np.nan) if empty else np.nanpercentile(values, 5, axis=0),
                    "p95": np.full(len(numeric), np.nan) if empty else np.nanpercentile(values, 95, axis=0),
                }
            for statistic in MC_STATISTICS:
                out.append(
                    {
                        "scenario": scenario,
                        "operation": operation,
                        "statistic": statistic,
                        "realisations": len(group),
                        "used": len(used),
                        "left_out": len(group) - len(used),
                        "left_out_why": why,
                        "optimal": int((used["status"] == "optimal").sum()),
                        "feasible": int((used["status"] == "feasible").sum()),
                        **dict(zip(numeric, stats[statistic], strict=True)),
                    }
                )
    return pd.DataFrame(out).set_index(["scenario", "operation", "statistic"])


def monte_carlo_tables(frames: list[pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame, xr.Dataset]:
    """Per-realisation KPI rows of every batch -> (all rows, :func:`monte_carlo_summary`, dataset).

    The dataset holds every numeric KPI as ``kpi_<name>(scenario, operation, realisation)``."""
    rows = pd.concat(frames, ignore_index=True)
    order = {name: k for k, name in enumerate(dict.fromkeys(rows["scenario"]))}  # scenarios as given
    rows = rows.sort_values(
        ["scenario", "realisation"], key=lambda c: c.map(order) if c.name == "scenario" else c, kind="stable"
    ).reset_index(drop=True)
    summary = monte_carlo_summary(rows)
    numeric = [
        c
        for c in rows.columns
        if c not in ("scenario", "operation", "realisation") and pd.api.types.is_numeric_dtype(rows[c])
    ]
    ds = rows.set_index(["scenario", "operation", "realisation"])[numeric].to_xarray()
    ds = ds.rename({name: f"kpi_{name}" for name in numeric})
    for name in numeric:
        ds[f"kpi_{name}"].attrs["units"] = KPI_UNITS.get(name, MC_UNITS.get(name, ""))
    return rows, summary, ds


MC_UNITS = {
    "resolves": "count (steps re-solved)",
    "rolling_seconds": "s (HiGHS re-solves)",
    "wall_seconds": "s (the whole realisation: plan, operation, AC checks)",
}
