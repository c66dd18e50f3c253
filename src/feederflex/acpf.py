"""AC check of a solved schedule: a pandapower Newton-Raphson power flow of every step.

The power flow runs on the feeder's original pandapower net (``Feeder.pandapower_json``: its
transformers, switches, line charging and transformer magnetising branches). The net's own loads,
generators and storage are taken out of service and one load per feeder bus carries the
schedule's net injection (load + EV + storage charging - storage discharge - generation, reactive
load), so a generator's or battery's scheduled power enters at its bus. The substation holds the
scenario's voltage. Results are compared with the LinDistFlow voltages the model claimed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from feederflex.feeders import run_ac, to_pandapower
from feederflex.kpis import SCHEDULED

if TYPE_CHECKING:
    import pandapower as pp

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
    "loading_pct": "percent of the branch rating (lines: max_i_ka; transformers: sn_mva)",
}


@dataclass
class ACNet:
    """A feeder's pandapower net made ready for schedules (:func:`ac_network`).

    ``load_pos``: row of ``net.load`` carrying each feeder bus's injection (feeder bus order);
    ``bus_pos``: row of ``net.bus`` (and ``net.res_bus``) of each feeder bus; ``elements``: per table
    (``line``, ``trafo``), the rows of the table and the feeder branch column each belongs to.

    The results of the last run are read from pandapower's internal case (``net._ppc``), where
    pandapower's result tables take them from: a recycled run writes no tables (see
    :func:`feederflex.feeders.run_ac`).
    """

    net: pp.pandapowerNet
    load_pos: np.ndarray
    bus_pos: np.ndarray
    elements: dict[str, tuple[np.ndarray, np.ndarray]]
    warm: bool = False  # the net holds a converged power flow: the next may recycle it
    _rows: dict[str, Any] = field(default_factory=dict)  # see rows

    def run(self) -> None:
        """The power flow of the current injections; a full run first and after a diverged one,
        then the recycled run (only the injections change between steps)."""
        try:
            run_ac(self.net, recycle=self.warm)
        except Exception:
            self.warm = False  # a diverged run leaves no voltages to start from
            raise
        self.warm = True

    def set_injections(self, p_mw: np.ndarray, q_mvar: np.ndarray) -> None:
        load = self.net.load
        load.iloc[self.load_pos, load.columns.get_loc("p_mw")] = p_mw
        load.iloc[self.load_pos, load.columns.get_loc("q_mvar")] = q_mvar

    @property
    def rows(self) -> dict[str, Any]:
        """Rows of the feeder's buses, branches and slack in ``net._ppc`` (pandapower's lookups, as
        its result tables use them), and the ratings pandapower's loading divides by; read after
        the first power flow (the net's structure does not change after it)."""
        if not self._rows:
            self._rows = self._result_rows()
        return self._rows

    def _result_rows(self) -> dict[str, Any]:
        net = self.net
        lookups = net["_pd2ppc_lookups"]
        if net["_options"]["trafo_loading"] != "current":
            raise ValueError("the AC check reads transformer loading as pandapower's trafo_loading='current'")
        rows: dict[str, Any] = {"bus": lookups["bus"][net.bus.index.to_numpy()[self.bus_pos]]}
        in_service = net.ext_grid.in_service.to_numpy(bool)
        rows["ext_grid"] = lookups["ext_grid"][net.ext_grid.index.to_numpy()[in_service]]
        for table, (pos, _) in self.elements.items():
            if not len(pos):
                continue
            df = net[table].iloc[pos]
            columns = (
                ("max_i_ka", "df", "parallel")
                if table == "line"
                else ("vn_hv_kv", "vn_lv_kv", "sn_mva", "parallel", "df")
            )
            limits: tuple[np.ndarray, ...] = tuple(df[c].to_numpy(float) for c in columns)
            rows[table] = (lookups["branch"][table][0] + pos, limits)
        return rows

    def voltages(self) -> np.ndarray:
        """Voltage magnitude (pu) of each feeder bus."""
        from pandapower.pypower.idx_bus import VM

        return self.net["_ppc"]["bus"][self.rows["bus"], VM].real.astype(float)

    def grid_import(self) -> float:
        """Active power from the external grid (MW, import positive)."""
        from pandapower.pypower.idx_gen import PG

        return float(self.net["_ppc"]["gen"][self.rows["ext_grid"], PG].real.sum())

    def element_results(self, table: str) -> dict[str, np.ndarray]:
        """``pl_mw``, ``ql_mvar`` and ``loading_percent`` of the table's feeder elements (rows as in
        ``elements``), computed from pandapower's branch flows as its result tables compute them."""
        from pandapower.pypower.idx_brch import F_BUS, PF, PT, QF, QT, T_BUS
        from pandapower.pypower.idx_bus import BASE_KV, VM

        ppc = self.net["_ppc"]
        ppc_rows, limits = self.rows[table]
        branch = ppc["branch"][ppc_rows]
        ends = branch[:, [F_BUS, T_BUS]].real.astype(np.int64)
        vm_kv = ppc["bus"][ends, VM] * ppc["bus"][ends, BASE_KV]
        s_ft = np.sqrt(branch[:, [PF, PT]].real ** 2 + branch[:, [QF, QT]].real ** 2)
        i_ft = s_ft / vm_kv / np.sqrt(3)
        with np.errstate(invalid="ignore"):
            if table == "line":  # loading = i_ka / (max_i_ka df parallel)
                max_i_ka, derating, parallel = limits
                i_max = max_i_ka * derating * parallel
                loading = np.full(len(i_max), np.inf)
                np.divide(np.max(i_ft, axis=1), i_max, where=i_max != 0, out=loading)
                loading = loading * 100
            else:  # loading = max(i_hv vn_hv, i_lv vn_lv) sqrt(3) / sn_mva / parallel / df
                vn_hv, vn_lv, sn_mva, parallel, derating = limits
                vns = np.column_stack([vn_hv, vn_lv])
                loading = np.max(i_ft * vns * np.sqrt(3) / sn_mva[:, np.newaxis] * 100.0, axis=1) / parallel / derating
        return {
            "pl_mw": branch[:, PF].real + branch[:, PT].real,
            "ql_mvar": branch[:, QF].real + branch[:, QT].real,
            "loading_percent": loading,
        }

    def branch_results(self, column: str, n_branch: int, how: str = "sum") -> np.ndarray:
        """A result (``pl_mw``, ``ql_mvar``, ``loading_percent``) per feeder branch: the sum (or the
        largest value) over the branch's parallel elements."""
        out = np.zeros(n_branch) if how == "sum" else np.full(n_branch, -np.inf)
        for table, (_, branch) in self.elements.items():
            if len(branch):
                (np.add if how == "sum" else np.maximum).at(out, branch, self.element_results(table)[column])
        return out


def ac_network(feeder: xr.Dataset, v_slack_pu: float) -> ACNet:
    """The feeder's original pandapower net with one injection load per feeder bus and the substation
    at ``v_slack_pu``; a Feeder file without the original net (written before it was kept) gets the
    rebuilt lines-only net of :func:`feederflex.feeders.to_pandapower`."""
    import pandapower as pp

    n_branch = feeder.sizes["branch"]
    if "pandapower_json" not in feeder:
        net = to_pandapower(feeder, v_slack_pu)
        lines = (np.arange(n_branch), np.arange(n_branch))  # created in branch order
        return ACNet(net, np.arange(len(net.load)), np.arange(len(net.bus)), {"line": lines})
    net = pp.from_json_string(str(feeder.pandapower_json.values))
    for table in ("load", "sgen", "storage"):
        net[table]["in_service"] = False
    pp_bus = feeder.bus.values.astype(int) - 1  # a merged bus is numbered by its lowest pandapower index
    created = pp.create_loads(net, pp_bus, p_mw=0.0, q_mvar=0.0, name="feederflex injection")
    net.ext_grid.loc[net.ext_grid.in_service.astype(bool), "vm_pu"] = v_slack_pu
    elements: dict[str, tuple[list[int], list[int]]] = {"line": ([], []), "trafo": ([], [])}
    for k, text in enumerate(feeder.pp_elements.values):
        for element in str(text).split():
            table, idx = element.split(":")
            elements[table][0].append(int(net[table].index.get_loc(int(idx))))
            elements[table][1].append(k)
    return ACNet(
        net,
        net.load.index.get_indexer(created),
        net.bus.index.get_indexer(pp_bus),
        {t: (np.array(rows, int), np.array(cols, int)) for t, (rows, cols) in elements.items()},
    )


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


def ac_check(
    feeder: xr.Dataset, solution: xr.Dataset, tolerance_pu: float | None = None, net: ACNet | None = None
) -> xr.Dataset:
    """Run the AC power flow of every step of ``solution`` on ``feeder``.

    Returns ``v_ac_pu(time, bus)``, ``v_error_pu`` (LinDistFlow minus AC), ``loss_mw(time)`` and
    per branch, ``p_grid_ac_mw(time)``, AC under- and overvoltage beyond the band (pu) and, in
    ``attrs``, the largest |v_pu - v_ac_pu|, AC violation counts (bus-steps beyond the band by
    more than ``tolerance_pu``) and pu x h, and the "unexpected" ones: AC violations where the
    model's slacks say the band holds. A solution without a schedule gives NaN and its status.
    ``net``: the feeder's :func:`ac_network` at the solution's substation voltage, when the caller
    checks many schedules of one feeder (building it costs more than a power flow); its injections
    are overwritten. ``loading_pct`` per branch and step and ``attrs["max_loading_pct"]`` give the
    AC loading (the largest over a branch's parallel elements).
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
    has_schedule = status in SCHEDULED
    loading = np.full((nt, nbr), np.nan)
    if has_schedule:
        acnet = ac_network(feeder, float(solution.attrs["substation_v_pu"])) if net is None else net
        p, q = net_injections(solution)
        for t in range(nt):
            acnet.set_injections(p[t], q[t])
            try:
                acnet.run()
            except Exception:  # a diverged step is recorded as such
                continue
            converged[t] = 1
            v_ac[t] = acnet.voltages()
            loss_p[t] = acnet.branch_results("pl_mw", nbr)
            loss_q[t] = acnet.branch_results("ql_mvar", nbr)
            loading[t] = acnet.branch_results("loading_percent", nbr, "max")
            loss[t] = float(loss_p[t].sum())
            p_grid[t] = acnet.grid_import()
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
            "loading_pct": (("time", "branch"), loading),
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
            "max_loading_pct": float(np.nanmax(loading)) if np.isfinite(loading).any() else np.nan,
            "ac_nonconverged_steps": int(nt - converged.sum()) if has_schedule else 0,
        }
    )
    if has_schedule and not converged.all():
        ds.attrs["ac_nonconverged_note"] = (
            f"the AC power flow diverged at steps {np.flatnonzero(converged == 0).tolist()}: their voltages and "
            "losses are NaN, the day's losses are NaN, and the schedule is not AC-verified there"
        )
    return ds
