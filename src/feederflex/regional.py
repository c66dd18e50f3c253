"""Bills of the metered subareas of regional microgrids (seed paper 004), from solution datasets.

A subarea (``regional.subareas``) is one bus. Its net demand per step is its load plus the net EV
load parked there (charging minus V2G) minus the PV used there. A residential subarea imports
what its net demand is above zero and sends what is below zero to the subarea named by its
``surplus_to`` (004's one-way transfer; the network's no-backfeed branches make it physical);
that subarea imports its net demand minus what it receives. Nothing is exported: what is sent
beyond the receiver's demand is reported as ``unabsorbed_mwh`` (0 whenever the no-backfeed buses
hold; the model curtails the PV instead).

The bill of a subarea is its import times the day's price plus what it pays the EV owners for
the energy their cars discharge into it (``regional.ev_discharge_price_per_mwh``); a microgrid's
bill is the sum of its subareas', ``all`` the sum over every subarea. The model is lossless
(LinDistFlow), so the subareas' imports add up to the substation's import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

BILL_COLUMNS = ("import_mwh", "import_cost", "ev_charge_mwh", "ev_discharge_mwh", "discharge_payment", "bill")


def _net_demand(solution: xr.Dataset, bus: int) -> np.ndarray:
    pv_here = solution.pv_p_mw.values[:, solution.pv_bus.values == bus].sum(axis=1) if "pv_bus" in solution else 0.0
    return solution.load_p_mw.sel(bus=bus).values + solution.ev_p_mw.sel(bus=bus).values - pv_here


def subarea_flows(solution: xr.Dataset, subareas: Sequence[Mapping]) -> dict[str, dict[str, np.ndarray]]:
    """Per subarea: ``import_mw``, ``sent_mw`` and ``received_mw`` per step (module docstring)."""
    demand = {a["name"]: _net_demand(solution, int(a["bus"])) for a in subareas}
    out = {a["name"]: {"received_mw": np.zeros(solution.sizes["time"])} for a in subareas}
    for a in subareas:
        if a.get("surplus_to"):
            sent = np.clip(-demand[a["name"]], 0, None)
            out[a["name"]]["sent_mw"] = sent
            out[a["surplus_to"]]["received_mw"] = out[a["surplus_to"]]["received_mw"] + sent
    for a in subareas:
        flows = out[a["name"]]
        flows.setdefault("sent_mw", np.zeros(solution.sizes["time"]))
        own = demand[a["name"]] - flows["received_mw"]
        flows["import_mw"] = np.clip(own, 0, None) if not a.get("surplus_to") else np.clip(demand[a["name"]], 0, None)
        flows["unabsorbed_mw"] = np.clip(-own, 0, None) if not a.get("surplus_to") else np.zeros_like(own)
    return out


def bills(solution: xr.Dataset, subareas: Sequence[Mapping], discharge_price_per_mwh: float) -> pd.DataFrame:
    """Bill of every subarea, microgrid (``microgrid:<name>``) and all of them (``all``), one row each."""
    dt = float(solution.attrs["step_hours"])
    price = solution.price_usd_per_mwh.values
    flows = subarea_flows(solution, subareas)
    rows = []
    for a in subareas:
        bus, f = int(a["bus"]), flows[a["name"]]
        dis = solution.ev_p_dis_mw.sel(bus=bus).values
        charge = solution.ev_p_mw.sel(bus=bus).values + dis
        rows.append(
            {
                "subarea": a["name"],
                "microgrid": a.get("microgrid", ""),
                "import_mwh": float(f["import_mw"].sum() * dt),
                "import_cost": float((price * f["import_mw"]).sum() * dt),
                "ev_charge_mwh": float(charge.sum() * dt),
                "ev_discharge_mwh": float(dis.sum() * dt),
                "discharge_payment": float(discharge_price_per_mwh * dis.sum() * dt),
                "sent_mwh": float(f["sent_mw"].sum() * dt),
                "unabsorbed_mwh": float(f["unabsorbed_mw"].sum() * dt),
            }
        )
    table = pd.DataFrame(rows)
    table["bill"] = table.import_cost + table.discharge_payment
    sums = ["import_mwh", "import_cost", "ev_charge_mwh", "ev_discharge_mwh", "discharge_payment", "bill"]
    groups = [(f"microgrid:{g}", part) for g, part in table.groupby("microgrid", sort=True) if g]
    totals = [
        {"subarea": name, "microgrid": name.split(":")[-1], **part[sums].sum().to_dict()} for name, part in groups
    ]
    totals.append({"subarea": "all", "microgrid": "", **table[sums].sum().to_dict()})
    return pd.concat([table, pd.DataFrame(totals)], ignore_index=True)


def bills_table(
    solutions: Mapping[str, xr.Dataset],
    settings: Mapping[str, Mapping],
    baselines: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    """Bills of every scenario (``settings[scenario]``: its ``day`` and ``regional``), with the
    change against each baseline of ``baselines`` (label -> scenarios): ``vs_<label>_pct`` =
    100 (bill - baseline) / baseline, negative for a reduction, against the baseline scenario of
    the same day (NaN when the label has none for that day or the scenario has no schedule)."""
    frames = {}
    for name, ds in solutions.items():
        regional = settings[name]["regional"]
        frame = bills(ds, regional["subareas"], float(regional["ev_discharge_price_per_mwh"]))
        frame.insert(0, "scenario", name)
        frame.insert(1, "day", settings[name]["day"])
        frame.insert(2, "status", str(ds.attrs.get("solver_status", "")))
        frames[name] = frame
    table = pd.concat(frames.values(), ignore_index=True) if frames else pd.DataFrame()
    for label, names in baselines.items():
        of_day = {settings[n]["day"]: n for n in names if n in frames}
        base = {
            (of_day[d], s): b
            for d in of_day
            for s, b in zip(frames[of_day[d]].subarea, frames[of_day[d]].bill, strict=True)
        }
        reference = [base.get((of_day.get(d, ""), s), np.nan) for d, s in zip(table.day, table.subarea, strict=True)]
        table[f"vs_{label}_pct"] = 100 * (table.bill - np.asarray(reference, float)) / np.asarray(reference, float)
    return table
