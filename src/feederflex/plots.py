"""Figures made from result datasets only (no model objects).

Every function takes datasets (or a KPI table), returns a matplotlib Figure and draws exactly the
dataset's values, so tests can read the data back from the axes. ``save`` writes a figure.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from feederflex.fleet import sampler_densities  # noqa: E402


def _hours(ds: xr.Dataset) -> np.ndarray:
    """Step start times in hours from the first step."""
    time = ds.time.values
    if np.issubdtype(time.dtype, np.timedelta64):
        return (time / np.timedelta64(1, "h")).astype(float)
    return ((time - time[0]) / np.timedelta64(1, "h")).astype(float)


def save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def voltage_heatmap(solution: xr.Dataset, ac: xr.Dataset | None = None, title: str = "") -> Figure:
    """Voltage per bus and step (LinDistFlow, and AC if given), band limits marked on the colour bar."""
    panels = [("LinDistFlow v_pu", solution.v_pu)] + ([("AC v_ac_pu", ac.v_ac_pu)] if ac is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    v_min, v_max = solution.attrs["v_min_pu"], solution.attrs["v_max_pu"]
    hours = _hours(solution)
    for ax, (label, da) in zip(axes[0], panels, strict=True):
        data = da.transpose("bus", "time").values
        mesh = ax.pcolormesh(
            np.append(hours, hours[-1] + solution.attrs["step_hours"]),
            np.arange(len(solution.bus) + 1) + 0.5,
            data,
            cmap="RdBu_r",
            vmin=min(v_min - 0.03, np.nanmin(data) if np.isfinite(data).any() else v_min),
            vmax=max(v_max + 0.03, np.nanmax(data) if np.isfinite(data).any() else v_max),
        )
        bar = fig.colorbar(mesh, ax=ax, label="voltage (pu)")
        for limit in (v_min, v_max):
            bar.ax.axhline(limit, color="k", lw=1.5)
        ax.set(xlabel="hour", ylabel="bus", title=f"{title} {label}".strip())
    return fig


def voltage_envelope(summary: xr.Dataset) -> Figure:
    """Lowest and highest bus voltage per step of every scenario (LinDistFlow solid, AC dashed)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    hours = _hours(summary)
    for k, scenario in enumerate(summary.scenario.values):
        colour = f"C{k % 10}"
        v = summary.v_pu.sel(scenario=scenario)
        ax.fill_between(hours, v.min("bus"), v.max("bus"), color=colour, alpha=0.15)
        ax.plot(hours, v.min("bus"), color=colour, label=f"{scenario} min")
        ax.plot(hours, v.max("bus"), color=colour, lw=0.8)
        ax.plot(hours, summary.v_ac_pu.sel(scenario=scenario).min("bus"), color=colour, ls="--", lw=0.8)
    ax.axhline(float(summary.attrs.get("v_min_pu", 0.95)), color="k", lw=1)
    ax.axhline(float(summary.attrs.get("v_max_pu", 1.05)), color="k", lw=1)
    ax.set(xlabel="hour", ylabel="voltage (pu)", title="voltage envelope per scenario (dashed: AC minimum)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def bus_voltage(summary: xr.Dataset, bus: int, scenarios: list[str] | None = None) -> Figure:
    """Voltage over time at one bus for chosen scenarios (000 Fig. 5, 7, 8); AC dashed."""
    fig, ax = plt.subplots(figsize=(8, 4))
    hours = _hours(summary)
    for k, scenario in enumerate(scenarios or list(summary.scenario.values)):
        ax.plot(hours, summary.v_pu.sel(scenario=scenario, bus=bus), color=f"C{k % 10}", marker=".", label=scenario)
        ax.plot(hours, summary.v_ac_pu.sel(scenario=scenario, bus=bus), color=f"C{k % 10}", ls="--", lw=0.8)
    ax.axhline(float(summary.attrs.get("v_min_pu", 0.95)), color="k", lw=1)
    ax.axhline(float(summary.attrs.get("v_max_pu", 1.05)), color="k", lw=1)
    ax.set(xlabel="hour", ylabel="voltage (pu)", title=f"voltage at bus {bus} (dashed: AC)")
    ax.legend(fontsize=7)
    return fig


def import_profiles(summary: xr.Dataset) -> Figure:
    """Substation import per scenario (004 Fig. 7: before and after), with the load and PV."""
    fig, ax = plt.subplots(figsize=(8, 4))
    hours = _hours(summary)
    for k, scenario in enumerate(summary.scenario.values):
        ax.step(hours, summary.p_grid_mw.sel(scenario=scenario), where="post", color=f"C{k % 10}", label=scenario)
    ax.axhline(0, color="k", lw=0.5)
    ax.set(xlabel="hour", ylabel="import (MW)", title="substation import (negative = export)")
    ax.legend(fontsize=7)
    return fig


def storage(solution: xr.Dataset) -> Figure:
    """Net power (discharge positive) and energy of every fixed and mobile storage unit (of planning
    candidates, only those built)."""
    unbuilt = set()
    if "plan_built" in solution:
        unbuilt = {
            str(c) for c, b in zip(solution.candidate.values, solution.plan_built.values, strict=True) if b < 0.5
        }
    units = [("fess", u) for u in solution.fess.values if str(u) not in unbuilt]
    units += [("mess", u) for u in solution.mess.values if str(u) not in unbuilt]
    fig, (ax_p, ax_e) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    hours = _hours(solution)
    for k, (kind, unit) in enumerate(units):
        sel = solution.sel({kind: unit})
        ax_p.step(
            hours, sel[f"{kind}_p_dis_mw"] - sel[f"{kind}_p_ch_mw"], where="post", color=f"C{k % 10}", label=str(unit)
        )
        ax_e.plot(
            hours + solution.attrs["step_hours"], sel[f"{kind}_e_mwh"], marker=".", color=f"C{k % 10}", label=str(unit)
        )
    ax_p.axhline(0, color="k", lw=0.5)
    ax_p.set(ylabel="discharge - charge (MW)", title="storage power and energy (end of step)")
    ax_e.set(xlabel="hour", ylabel="energy (MWh)")
    if units:
        ax_p.legend(fontsize=7, ncol=3)
    return fig


def mess_itinerary(solution: xr.Dataset) -> Figure:
    """Station (bus) of every mobile unit per step; gaps are steps on the road."""
    fig, ax = plt.subplots(figsize=(8, 4))
    hours = _hours(solution)
    for k, unit in enumerate(solution.mess.values):
        station = solution.mess_station.sel(mess=unit).values.astype(float)
        station[station < 0] = np.nan
        ax.step(hours, station + 0.1 * k, where="post", color=f"C{k % 10}", lw=2, label=str(unit))
    ax.set(xlabel="hour", ylabel="station bus", title="MESS itineraries (gaps: travelling or installing)")
    if solution.sizes.get("mess", 0):
        ax.legend(fontsize=7, ncol=3)
    return fig


def mess_positions(solution: xr.Dataset, feeder: xr.Dataset, step: int) -> Figure:
    """The feeder's graph with the mobile units at their stations in one step."""
    fig, ax = plt.subplots(figsize=(6, 5))
    x = feeder.x_coord.values
    y = feeder.y_coord.values
    if np.isnan(x).any():  # no coordinates: lay buses out in radial order
        x = np.arange(feeder.sizes["bus"], dtype=float)
        y = np.zeros(feeder.sizes["bus"])
    pos = {int(b): (x[k], y[k]) for k, b in enumerate(feeder.bus.values)}
    for br in feeder.branch.values:
        a, b = int(feeder.from_bus.sel(branch=br)), int(feeder.to_bus.sel(branch=br))
        ax.plot([pos[a][0], pos[b][0]], [pos[a][1], pos[b][1]], color="0.6", lw=1)
    v = solution.v_pu.isel(time=step)
    scatter = ax.scatter(x, y, c=v.sel(bus=feeder.bus.values).values, cmap="RdBu_r", s=30, zorder=3)
    fig.colorbar(scatter, ax=ax, label="voltage (pu)")
    for k, unit in enumerate(solution.mess.values):
        station = int(solution.mess_station.sel(mess=unit).isel(time=step))
        if station >= 0:
            ax.scatter(
                *pos[station],
                marker="s",
                s=120 + 90 * k,
                facecolors="none",
                edgecolors=f"C{k % 10}",
                lw=2,
                zorder=4,
                label=str(unit),
            )
    ax.set(title=f"MESS positions, step {step}", xticks=[], yticks=[])
    if solution.sizes.get("mess", 0):
        ax.legend(fontsize=7)
    return fig


def kpi_comparison(kpis: pd.DataFrame, columns: list[str]) -> Figure:
    """One bar chart per KPI across scenarios."""
    fig, axes = plt.subplots(len(columns), 1, figsize=(8, 2.2 * len(columns)), squeeze=False)
    for ax, column in zip(axes[:, 0], columns, strict=True):
        values = pd.to_numeric(kpis[column], errors="coerce")
        ax.bar(range(len(values)), values.fillna(0.0).to_numpy(), color="C0")
        ax.set_ylabel(column, fontsize=8)
        ax.set_xticks(range(len(values)), [])
    axes[-1, 0].set_xticks(range(len(kpis)), kpis.index, rotation=30, ha="right", fontsize=7)
    fig.suptitle("KPIs per scenario")
    return fig


def fleet_histograms(fleet: xr.Dataset, spec: dict) -> Figure:
    """Sampled daily mileage and arrival times against the densities of the fleet's sampler."""
    fig, (ax_d, ax_t) = plt.subplots(1, 2, figsize=(10, 4))
    km = fleet.mileage_km.values
    top = max(1.0, min(200.0, float(km.max())))
    ax_d.hist(km, bins=np.linspace(0, top, 41), density=True, color="C0", alpha=0.6, label="sample")
    ax_t.hist(
        fleet.arrival_h.values, bins=np.arange(0, 24.25, 0.5), density=True, color="C1", alpha=0.6, label="sample"
    )
    mileage_pdf, arrival_pdf = sampler_densities(spec)
    if mileage_pdf is not None:
        grid_km = np.linspace(0.5, top, 200)
        ax_d.plot(grid_km, mileage_pdf(grid_km), color="k", label=f"{spec['sampler']} (config)")
    if arrival_pdf is not None:
        grid_h = np.linspace(0, 24, 241)
        ax_t.plot(grid_h, arrival_pdf(grid_h), color="k", label=f"{spec['sampler']} (config)")
    vehicles = int(fleet.attrs.get("vehicles", fleet.sizes["ev"]))
    stays = f" ({fleet.sizes['ev']} stays)" if vehicles != fleet.sizes["ev"] else ""
    ax_d.set(xlabel="daily mileage (km)", ylabel="density", title=f"{vehicles} vehicles{stays}, {spec['sampler']}")
    ax_t.set(xlabel="arrival (h)", ylabel="density", title="arrival at each stay (start of its charging window)")
    ax_d.legend(fontsize=7)
    ax_t.legend(fontsize=7)
    return fig


def front(ds: xr.Dataset) -> Figure:
    """Epsilon-constraint front: optimised objective (y) against the swept one (x), points by fraction."""
    x_name, y_name = ds.attrs["sweep"], ds.attrs["optimise"]
    x = ds.value.sel(objective=x_name).values
    y = ds.value.sel(objective=y_name).values
    order = np.argsort(x)
    dominated = ds.dominated.values.astype(bool)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(x[order], y[order], "-", color="0.6", zorder=1)
    ax.scatter(x[~dominated], y[~dominated], color="tab:blue", zorder=2, label="non-dominated")
    if dominated.any():
        ax.scatter(x[dominated], y[dominated], marker="x", color="tab:red", zorder=3, label="dominated")
    for xi, yi, p in zip(x, y, ds.point.values, strict=True):
        ax.annotate(str(p), (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
    unit = dict(zip(ds.objective.values, ds.unit.values, strict=True))
    ax.set_xlabel(f"{x_name} ({unit[x_name]}, {ds.sense.sel(objective=x_name).item()})")
    ax.set_ylabel(f"{y_name} ({unit[y_name]}, {ds.sense.sel(objective=y_name).item()})")
    ax.set_title(f"front of scenario {ds.attrs['scenario']}")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def hosting(results: dict[str, xr.Dataset]) -> Figure:
    """Highest AC voltage of the day against the case's total PV rating, one marker per AC trial
    (filled: the trial passed), the band's upper edge and each case's LinDistFlow and AC capacity."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    v_max = None
    for k, (name, ds) in enumerate(results.items()):
        order = np.argsort(ds.trial_scale_mw.values)
        scale, v = ds.trial_scale_mw.values[order], ds.trial_v_ac_max_pu.values[order]
        passed = ds.trial_passed.values[order] == 1
        color = f"C{k % 10}"
        ax.plot(scale, v, color=color, lw=0.8, label=f"{name}: AC {ds.attrs['ac_capacity_mw']:.2f} MW")
        ax.scatter(scale[passed], v[passed], color=color, s=18)
        ax.scatter(scale[~passed], v[~passed], facecolors="none", edgecolors=color, s=18)
        ldf = float(ds.attrs["ldf_capacity_mw"])
        if np.isfinite(ldf):
            ax.axvline(ldf, color=color, ls=":", lw=0.8)
        v_max = float(ds.attrs["v_max_pu"])
    if v_max is not None:
        ax.axhline(v_max, color="k", ls="--", lw=0.8, label="upper band edge")
    ax.set(xlabel="total PV rating of the case (MW)", ylabel="highest AC voltage of the day (pu)")
    ax.set_title("PV hosting capacity: AC trials (filled = passed); dotted = LinDistFlow capacity", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def subareas(solution: xr.Dataset, areas: list[dict], title: str = "") -> Figure:
    """Per metered subarea, its curves as 004 draws them: load, PV used, EV charging and
    discharging, and the import from the grid (:func:`feederflex.regional.subarea_flows`)."""
    from feederflex.regional import subarea_flows

    flows = subarea_flows(solution, areas)
    cols = 2
    rows = max(1, -(-len(areas) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.6 * rows), sharex=True, squeeze=False)
    hours = _hours(solution)
    for ax, area in zip(axes.flat, areas, strict=False):
        bus = int(area["bus"])
        dis = solution.ev_p_dis_mw.sel(bus=bus).values
        pv = solution.pv_p_mw.values[:, solution.pv_bus.values == bus].sum(axis=1)
        curves = {
            "load": solution.load_p_mw.sel(bus=bus).values,
            "PV used": pv,
            "EV charging": solution.ev_p_mw.sel(bus=bus).values + dis,
            "EV discharging": -dis,
            "import": flows[area["name"]]["import_mw"],
        }
        for k, (label, values) in enumerate(curves.items()):
            ax.step(hours, values, where="post", color=f"C{k}", label=label, lw=1.8 if label == "import" else 1.0)
        if area.get("surplus_to"):
            ax.step(hours, -flows[area["name"]]["sent_mw"], where="post", color="C5", ls="--", label="sent on")
        ax.axhline(0, color="k", lw=0.5)
        ax.set(title=f"{area['name']} ({area['kind']}, bus {bus})", ylabel="MW")
    for ax in axes.flat[len(areas) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set(xlabel="hour")
    axes.flat[0].legend(fontsize=7, ncol=3)
    fig.suptitle(title or "subareas")
    fig.tight_layout()
    return fig
