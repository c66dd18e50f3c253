"""Feeders: pandapower networks as radial Feeder datasets, and back to pandapower for AC checks.

Bus numbering: feederflex bus numbers are the pandapower bus index plus one, so that the
IEEE 33-bus feeder keeps the numbering of Baran and Wu (1989) and of the papers (substation =
bus 1, the far end of the main feeder = bus 18). Buses joined by closed bus-bus switches are one
bus, numbered by the lowest pandapower index of the group (``bus_of_pp_bus`` maps every
pandapower bus). Branches are numbered 1..n_bus-1 in breadth-first order from the substation;
every branch runs from the parent (towards the substation) to the child. A branch is a line or a
two-winding transformer (parallel elements between the same buses are one branch). Impedances are
given in ohm at the child bus and in per unit on ``s_base_mva`` (1 MVA) and the child bus's
``vn_kv``; a transformer adds its off-nominal ratio ``ratio_pu`` (parent side), so that
LinDistFlow reads w_child = w_parent / ratio^2 - 2 (r P + x Q). Shunt elements of lines (charging
capacitance) and transformers (magnetising branch) are left out of the linear model; the AC check
runs on the original net and has them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import pickle
import warnings
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from feederflex.errors import FeederError

if TYPE_CHECKING:
    import pandapower as pp

S_BASE_MVA = 1.0
BUILTIN_FEEDERS = ("case33bw", "case69", "case33bw_x3", "regional3")
_BUILTIN_BUS_COUNT = {"case33bw": 33, "case69": 69, "case33bw_x3": 97, "regional3": 10}
_PACKAGE_TABLES = {"case69": "case69.csv"}
SIMBENCH_PREFIX = "simbench:"  # built-ins shipped as tables in feederflex/data


def load_pandapower(source: str) -> pp.pandapowerNet:
    """Return a pandapower net: a built-in name (``case33bw``, ``case69``), ``simbench:<code>`` or
    the path of a pandapower JSON."""
    if source.startswith(SIMBENCH_PREFIX):
        return simbench_net(source.removeprefix(SIMBENCH_PREFIX))
    import pandapower as pp
    import pandapower.networks as pn

    if source == "case33bw_x3":
        return case33bw_x3()
    if source == "regional3":
        return regional3()
    if source in _PACKAGE_TABLES:
        return radial_table_net(_PACKAGE_TABLES[source])
    if source in BUILTIN_FEEDERS:
        return getattr(pn, source)()
    path = Path(source)
    if not path.is_file():
        raise FeederError(
            f"network.source: {source!r} is neither a built-in feeder "
            f"({', '.join(sorted(BUILTIN_FEEDERS))}), nor simbench:<code>, nor an existing pandapower JSON file"
        )
    return pp.from_json(str(path))


def simbench_net(code: str) -> pp.pandapowerNet:
    """The SimBench grid ``code`` (e.g. ``1-LV-rural1--0-sw``) with its yearly profiles, from the
    ``simbench`` package's own data (no download).

    Converting a grid from SimBench's CSV tables takes seconds (it reads the whole data set), and a
    study asks for its grid in several jobs, so the converted net is kept in a cache
    (:func:`cache_dir`), one pickle per code and simbench/pandapower version; delete it at will.
    """
    from importlib.metadata import version

    name = f"{code}-simbench{version('simbench')}-pandapower{version('pandapower')}.pickle"
    cached = cache_dir() / "simbench" / name
    if cached.is_file():
        with cached.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 (our own cache, written below)
    import simbench

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            net = simbench.get_simbench_net(code)
        except Exception as exc:  # simbench raises plain errors for unknown codes
            raise FeederError(
                f"network.source: {SIMBENCH_PREFIX}{code} is not a SimBench grid ({exc}); codes look like "
                "1-LV-rural1--0-sw or 1-MV-semiurb--1-sw (simbench.collect_all_simbench_codes() lists them)"
            ) from exc
    net.name = f"{SIMBENCH_PREFIX}{code}"
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        with partial.open("wb") as handle:
            pickle.dump(net, handle, protocol=5)
        partial.replace(cached)  # atomic: a parallel job reads a whole file or none
    except OSError:  # a read-only home: convert every time
        pass
    return net


def cache_dir() -> Path:
    """Where feederflex keeps what it can rebuild: ``$FEEDERFLEX_CACHE``, else
    ``$XDG_CACHE_HOME/feederflex``, else ``~/.cache/feederflex``."""
    if os.environ.get("FEEDERFLEX_CACHE"):
        return Path(os.environ["FEEDERFLEX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "feederflex"


def case33bw_x3() -> pp.pandapowerNet:
    """Three IEEE 33-bus feeders joined at one substation bus: 97 buses, 96 branches (the large
    rung of the benchmarks and issue 3's 97-bus case). Feeder A keeps buses 1-33; bus b (2-33) of
    feeders B and C becomes b + 32 and b + 64 (bus 18 -> 50 and 82); base case: 3 x 202.7 kW losses."""
    import pandapower.networks as pn
    import pandapower.toolbox as tb

    net = pn.case33bw()
    for _ in range(2):
        net, lookup = tb.merge_nets(
            net, pn.case33bw(), validate=False, std_prio_on_net1=True, return_net2_reindex_lookup=True
        )
        substation = int(lookup["bus"][0])
        net.ext_grid = net.ext_grid[net.ext_grid.bus != substation]
        tb.fuse_buses(net, 0, [substation])
    tb.create_continuous_bus_index(net, start=0)
    net.name = "case33bw_x3"
    return net


REGIONAL3_PEAK_MW = {"residential": 1.3636, "commercial": 1.8182}  # 004 Table 3 peaks (kW / 1000)


def regional3() -> pp.pandapowerNet:
    """004's three regional microgrids A, B, C as a 10 kV feeder of short cables (004 gives no grid).

    Bus 1 is the grid. Microgrid k (0, 1, 2 = A, B, C) has a node bus 2 + 3k fed from bus 1 by 1 km of
    cable, and behind it its residential subarea (bus 3 + 3k) and its commercial subarea (bus 4 + 3k),
    0.5 km each (NA2XS2Y 1x240 12/20 kV, 7.3 MVA). The base loads are the peaks of 004's Table 3
    (1.3636 MW residential, 1.8182 MW commercial) at power factor 0.95, so a day whose
    ``bus_shapes`` are Table 3's columns gives its loads exactly. What flows from the residential bus to the node
    feeds the commercial subarea: that is 004's transfer of residential PV surplus.
    """
    import pandapower as pp

    net = pp.create_empty_network(name="regional3")
    grid = pp.create_bus(net, vn_kv=10.0, name="grid")
    pp.create_ext_grid(net, grid, vm_pu=1.0)
    cable = "NA2XS2Y 1x240 RM/25 12/20 kV"
    tan_phi = math.tan(math.acos(0.95))
    for name in "ABC":
        node = pp.create_bus(net, vn_kv=10.0, name=f"{name} node")
        pp.create_line(net, grid, node, length_km=1.0, std_type=cable, name=f"grid-{name}")
        for kind, peak in REGIONAL3_PEAK_MW.items():
            bus = pp.create_bus(net, vn_kv=10.0, name=f"{name} {kind}")
            pp.create_line(net, node, bus, length_km=0.5, std_type=cable, name=f"{name}-{kind}")
            pp.create_load(net, bus, p_mw=peak, q_mvar=peak * tan_phi, name=f"{name} {kind}")
    return net


def radial_table_net(name: str, vn_kv: float = 12.66) -> pp.pandapowerNet:
    """A pandapower net from a branch table shipped in ``feederflex/data`` (its header cites the source).

    One row per branch: ``from_bus, to_bus`` (1-based, bus 1 = substation), ``r_ohm, x_ohm`` and the
    load at ``to_bus`` in kW and kvar. pandapower bus ``k`` is bus ``k + 1`` of the table, so the
    numbering of the source paper holds.
    """
    from importlib.resources import files

    import pandapower as pp
    import pandas as pd

    with files("feederflex").joinpath("data", name).open() as handle:
        table = pd.read_csv(handle, comment="#")
    n_bus = len(table) + 1
    net = pp.create_empty_network(name=name.removesuffix(".csv"), sn_mva=S_BASE_MVA)
    for bus in range(1, n_bus + 1):
        pp.create_bus(net, vn_kv=vn_kv, name=str(bus), index=bus - 1)
    for row in table.itertuples(index=False):
        pp.create_line_from_parameters(
            net,
            int(row.from_bus) - 1,
            int(row.to_bus) - 1,
            length_km=1.0,
            r_ohm_per_km=float(row.r_ohm),
            x_ohm_per_km=float(row.x_ohm),
            c_nf_per_km=0.0,
            max_i_ka=99999.0,
        )
        if row.p_load_kw or row.q_load_kvar:
            pp.create_load(net, int(row.to_bus) - 1, p_mw=row.p_load_kw / 1000, q_mvar=row.q_load_kvar / 1000)
    pp.create_ext_grid(net, 0, vm_pu=1.0)
    return net


_REFUSED_TABLES = {
    "trafo3w": "three-winding transformers are not supported: replace it by two-winding transformers",
    "impedance": "impedance elements are not supported: replace it by a line",
    "dcline": "DC lines are not supported: take it out of service",
    "ward": "ward equivalents are not supported: replace it by a load",
    "xward": "extended ward equivalents are not supported: replace it by a load",
    "gen": "voltage-controlled generators (gen) are not supported: model it as an sgen (PQ generator)",
    "shunt": "shunts are not part of the linear model: take it out of service or fold it into a load",
}


def _check_supported(net: pp.pandapowerNet, source: str) -> None:
    """Refuse, naming the element, what a radial LinDistFlow feeder cannot represent."""
    for table, advice in _REFUSED_TABLES.items():
        if table in net and len(net[table]) and net[table]["in_service"].any():
            idx = net[table].index[net[table]["in_service"].astype(bool)][0]
            name = net[table].at[idx, "name"] if "name" in net[table] else None
            raise FeederError(f"network {source!r}: {table} {idx} ({name}) is in service; {advice}")
    grids = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    if len(grids) != 1:
        names = ", ".join(f"ext_grid {i} at bus {int(b)}" for i, b in grids.bus.items())
        raise FeederError(
            f"network {source!r}: expected exactly one in-service ext_grid (the substation), found {len(grids)}"
            + (f" ({names}); take all but one out of service" if len(grids) else "")
        )


def _merged_buses(net: pp.pandapowerNet, source: str) -> dict[int, int]:
    """Each in-service pandapower bus's representative: closed bus-bus switches merge their buses
    into the lowest index of the group; open ones cut."""
    rep = {int(b): int(b) for b in net.bus.index[net.bus.in_service.astype(bool)]}

    def find(bus: int) -> int:
        while rep[bus] != bus:
            rep[bus] = rep[rep[bus]]
            bus = rep[bus]
        return bus

    closed = net.switch[(net.switch.et == "b") & net.switch.closed.astype(bool)] if len(net.switch) else net.switch
    for idx, sw in closed.iterrows():
        a, b = int(sw.bus), int(sw.element)
        if a not in rep or b not in rep:
            continue
        if float(sw.get("z_ohm", 0.0) or 0.0) > 0:
            raise FeederError(
                f"network {source!r}: closed bus-bus switch {idx} ({sw.get('name')}) has z_ohm = {sw.z_ohm}; "
                "closed switches merge their buses, so set z_ohm = 0 or model the impedance as a line"
            )
        if net.bus.at[a, "vn_kv"] != net.bus.at[b, "vn_kv"]:
            raise FeederError(
                f"network {source!r}: closed bus-bus switch {idx} joins buses {a} and {b} of different vn_kv"
            )
        ra, rb = find(a), find(b)
        rep[max(ra, rb)] = min(ra, rb)
    return {bus: find(bus) for bus in rep}


_BRANCH_TABLES = (("line", "from_bus", "to_bus", "l"), ("trafo", "hv_bus", "lv_bus", "t"))


def _branch_groups(net: pp.pandapowerNet, merged: dict[int, int], source: str) -> list[list[tuple[str, int]]]:
    """In-service lines and transformers (open line/trafo switches take them out), grouped by the
    pair of merged buses they join: parallel elements are one group."""
    groups: dict[frozenset[int], list[tuple[str, int]]] = {}
    for table, a_col, b_col, et in _BRANCH_TABLES:
        rows = net[table][net[table].in_service.astype(bool)]
        if len(net.switch):
            opened = net.switch[(net.switch.et == et) & ~net.switch.closed.astype(bool)]
            rows = rows.drop(index=opened.element.unique(), errors="ignore")
        for idx, a, b in zip(rows.index, rows[a_col], rows[b_col], strict=True):
            if int(a) not in merged or int(b) not in merged:
                continue  # an element at an out-of-service bus is out, as in pandapower
            ends = frozenset((merged[int(a)], merged[int(b)]))
            if len(ends) == 1:
                raise FeederError(
                    f"network {source!r}: {table} {idx} ({net[table].at[idx, 'name']}) joins buses that closed "
                    "bus-bus switches merge into one; open a switch or take the element out of service"
                )
            groups.setdefault(ends, []).append((table, int(idx)))
    for elements in groups.values():
        if len({table for table, _ in elements}) > 1:
            raise FeederError(
                f"network {source!r}: {_element_text(elements)} run in parallel between the same buses; "
                "a line parallel to a transformer is not supported"
            )
    return list(groups.values())


def _element_text(elements: list[tuple[str, int]]) -> str:
    return " and ".join(f"{table} {idx}" for table, idx in elements)


def _ends(net: pp.pandapowerNet, merged: dict[int, int], elements: list[tuple[str, int]]) -> tuple[int, int]:
    table, idx = elements[0]
    a_col, b_col = ("from_bus", "to_bus") if table == "line" else ("hv_bus", "lv_bus")
    return merged[int(net[table].at[idx, a_col])], merged[int(net[table].at[idx, b_col])]


def _radial_tree(
    net: pp.pandapowerNet, merged: dict[int, int], groups: list, root: int, source: str
) -> tuple[dict[int, tuple[int, int]], list[int]]:
    """Breadth-first tree from the substation: each reached bus's (parent bus, group) and the buses
    in radial order. A group that closes a loop is a :class:`FeederError` naming its elements."""
    neighbours: dict[int, list[tuple[int, int]]] = {}
    for k, elements in enumerate(groups):
        a, b = _ends(net, merged, elements)
        neighbours.setdefault(a, []).append((b, k))
        neighbours.setdefault(b, []).append((a, k))
    parent: dict[int, tuple[int, int]] = {}
    order: list[int] = []
    seen, used = {root}, set()
    queue = deque([root])
    while queue:
        bus = queue.popleft()
        for other, k in sorted(neighbours.get(bus, [])):
            if k in used:
                continue
            used.add(k)
            if other in seen:
                raise FeederError(
                    f"network {source!r} is meshed: {_element_text(groups[k])} "
                    f"({net[groups[k][0][0]].at[groups[k][0][1], 'name']}) closes a loop between buses "
                    f"{bus} and {other} (pandapower indices); open a switch in the loop (net.switch) or take "
                    "an element out of service"
                )
            seen.add(other)
            parent[other] = (bus, k)
            order.append(other)
            queue.append(other)
    return parent, order


def _unreached(net: pp.pandapowerNet, merged: dict[int, int], reached: set[int], source: str) -> None:
    """Buses cut off from the substation may carry nothing (pandapower leaves them unsupplied too)."""
    cut = {bus for bus, rep in merged.items() if rep not in reached}
    for table in ("load", "sgen", "storage"):
        rows = net[table][net[table].in_service.astype(bool) & net[table].bus.isin(cut)]
        if len(rows):
            idx = rows.index[0]
            raise FeederError(
                f"network {source!r} is disconnected: {table} {idx} at bus {int(rows.bus.iloc[0])} "
                "(pandapower index) cannot be reached from the substation; close a switch or take it out of service"
            )


def _tap_ratio(trafo, net: pp.pandapowerNet, idx: int, source: str) -> float:
    """Off-nominal voltage ratio (pu) of a two-winding transformer at its tap position, as pandapower
    computes it: (vn_hv (1 + tap) / vn_lv) / (hv bus kV / lv bus kV), the tap on its side."""
    kind = trafo.get("tap_changer_type")
    steps = float(trafo.tap_pos - trafo.tap_neutral) if pd.notna(trafo.get("tap_pos")) else 0.0
    step = float(trafo.get("tap_step_percent", 0.0) or 0.0)
    if kind is not None and pd.notna(kind) and kind != "Ratio" and steps:
        raise FeederError(
            f"network {source!r}: trafo {idx} has a {kind} tap changer off neutral; only ratio tap changers "
            "(tap_changer_type 'Ratio') are supported: set it to neutral or to a ratio changer"
        )
    if bool(trafo.get("tap_dependency_table", False)):
        raise FeederError(f"network {source!r}: trafo {idx} has tap-dependent impedance, which is not supported")
    tap = 1.0 + steps * step / 100 if kind is not None and pd.notna(kind) else 1.0  # no changer: tap ignored
    vn_hv, vn_lv = float(trafo.vn_hv_kv), float(trafo.vn_lv_kv)
    if trafo.tap_side == "hv":
        vn_hv *= tap
    elif trafo.tap_side == "lv":
        vn_lv *= tap
    bus_kv = net.bus.vn_kv
    return (vn_hv / vn_lv) / (float(bus_kv.at[int(trafo.hv_bus)]) / float(bus_kv.at[int(trafo.lv_bus)]))


def _branch_parameters(net, elements, parent: int, merged, source: str) -> tuple[complex, float, float]:
    """Series impedance (ohm, at the child bus), apparent-power limit (MVA) and off-nominal ratio (pu)
    of one group of parallel elements: admittances add, limits add, ratios must agree."""
    table = elements[0][0]
    admittance, s_max, ratios = 0j, 0.0, []
    for _, idx in elements:
        row = net[table].loc[idx]
        n = float(row.get("parallel", 1) or 1)
        if table == "line":
            z = complex(row.r_ohm_per_km, row.x_ohm_per_km) * float(row.length_km) / n
            s_max += math.sqrt(3) * float(net.bus.vn_kv.at[int(row.to_bus)]) * float(row.max_i_ka) * n
            ratios.append(1.0)
        else:
            if merged[int(row.hv_bus)] != parent:
                raise FeederError(
                    f"network {source!r}: trafo {idx} ({row.get('name')}) has its low-voltage side towards the "
                    "substation; feederflex feeds transformers from their high-voltage side"
                )
            z_ohm = float(row.vk_percent) / 100 * float(row.vn_lv_kv) ** 2 / float(row.sn_mva)
            r_ohm = float(row.vkr_percent) / 100 * float(row.vn_lv_kv) ** 2 / float(row.sn_mva)
            z = complex(r_ohm, math.sqrt(max(z_ohm**2 - r_ohm**2, 0.0))) / n
            s_max += float(row.sn_mva) * float(row.get("df", 1.0) or 1.0) * n
            ratios.append(_tap_ratio(row, net, idx, source))
        admittance += 1 / z
    if max(ratios) - min(ratios) > 1e-9:
        raise FeederError(
            f"network {source!r}: parallel {_element_text(elements)} have different tap ratios {ratios}; "
            "set them to the same tap position"
        )
    return 1 / admittance, s_max, ratios[0]


def _units(net, table: str, merged: dict[int, int]):
    rows = net[table][net[table].in_service.astype(bool)]
    return rows[rows.bus.isin(list(merged))]


def _unit_variables(net, merged: dict[int, int]) -> dict[str, tuple]:
    """The net's own generators (``sgen`` -> ``gen``) and batteries (``storage``) at their merged buses."""
    sgen = _units(net, "sgen", merged)
    scale = sgen.scaling.to_numpy(float) if "scaling" in sgen else 1.0
    sn = sgen.sn_mva.to_numpy(float) if "sn_mva" in sgen else np.full(len(sgen), np.nan)
    store = _units(net, "storage", merged)
    p_store = np.abs(store[["min_p_mw", "max_p_mw"]].to_numpy(float)).max(axis=1) if len(store) else np.zeros(0)
    if "sn_mva" in store:
        p_store = np.where(np.isfinite(store.sn_mva.to_numpy(float)), store.sn_mva.to_numpy(float), p_store)
    eff = store.efficiency_percent.to_numpy(float) if "efficiency_percent" in store else np.full(len(store), 1.0)
    eff = np.where(np.isfinite(eff), np.where(eff > 1, eff / 100, eff), 1.0)  # SimBench gives 0.95 "percent"
    e_max = store.max_e_mwh.to_numpy(float)
    return {
        "gen_name": ("gen", np.array([f"sgen{i}" for i in sgen.index], dtype=object)),
        "gen_bus": ("gen", np.array([merged[int(b)] + 1 for b in sgen.bus], dtype=int)),
        "gen_p_mw": ("gen", sgen.p_mw.to_numpy(float) * scale),
        "gen_s_mva": ("gen", sn * scale),
        "gen_type": ("gen", np.array([str(t) for t in sgen.get("type", [""] * len(sgen))], dtype=object)),
        "gen_pp_index": ("gen", sgen.index.to_numpy(int)),
        "storage_name": ("storage", np.array([f"storage{i}" for i in store.index], dtype=object)),
        "storage_bus": ("storage", np.array([merged[int(b)] + 1 for b in store.bus], dtype=int)),
        "storage_p_mw": ("storage", p_store),
        "storage_e_mwh": ("storage", e_max),
        "storage_soc_min": (
            "storage",
            np.divide(store.min_e_mwh.to_numpy(float), e_max, where=e_max > 0, out=np.zeros(len(store))),
        ),
        "storage_soc_init": ("storage", store.soc_percent.to_numpy(float) / 100 if len(store) else np.zeros(0)),
        "storage_efficiency": ("storage", eff),
        "storage_pp_index": ("storage", store.index.to_numpy(int)),
    }


def _net_json(net: pp.pandapowerNet) -> str:
    """The net as pandapower JSON, without SimBench's yearly profiles (they go to the profile files),
    its tables' columns in sorted order: SimBench's converter orders them differently from one
    process to the next (set iteration), and the Feeder file should not change with it."""
    import copy

    import pandapower as pp
    import pandas as pd

    profiles = net.get("profiles")
    if profiles is not None:
        net["profiles"] = {}
    try:
        canonical = copy.deepcopy(net)
    finally:
        if profiles is not None:
            net["profiles"] = profiles
    for key, table in list(canonical.items()):
        if isinstance(table, pd.DataFrame) and not key.startswith("_"):
            canonical[key] = table[sorted(table.columns, key=str)]
    return pp.to_json(canonical)


def feeder_from_pandapower(net: pp.pandapowerNet, source: str = "pandapower net") -> xr.Dataset:
    """Convert a pandapower net that is radial once switches are applied into a Feeder dataset.

    Closed bus-bus switches merge buses (the lowest pandapower index names the merged bus; the map
    is ``bus_of_pp_bus``), open switches cut; parallel lines or transformers between the same two
    buses are one branch; transformers are branches with an off-nominal ratio. The original net is
    kept (``pandapower_json``) for the AC check. Buses cut off from the substation that carry nothing
    are left out.

    Raises
    ------
    FeederError
        Naming the element: a loop, a second external grid, an element the linear model cannot
        represent, a load cut off from the substation.
    """
    _check_supported(net, source)
    merged = _merged_buses(net, source)
    groups = _branch_groups(net, merged, source)
    root = merged[int(net.ext_grid[net.ext_grid.in_service.astype(bool)].bus.iloc[0])]
    parent, order = _radial_tree(net, merged, groups, root, source)
    reached = {root, *order}
    _unreached(net, merged, reached, source)
    merged = {bus: rep for bus, rep in merged.items() if rep in reached}
    buses = np.array(sorted(reached), dtype=int)
    params = [_branch_parameters(net, groups[parent[b][1]], parent[b][0], merged, source) for b in order]
    z_ohm = np.array([z for z, _, _ in params], dtype=complex).reshape(-1)
    z_base = net.bus.vn_kv.loc[order].to_numpy(float) ** 2 / S_BASE_MVA

    loads = _units(net, "load", merged)
    scale = loads.scaling.to_numpy(float) if "scaling" in loads else 1.0
    at = loads.bus.map(merged)
    p_load = (loads.p_mw * scale).groupby(at).sum().reindex(buses, fill_value=0.0)
    q_load = (loads.q_mvar * scale).groupby(at).sum().reindex(buses, fill_value=0.0)

    xy = np.full((len(buses), 2), np.nan)
    if "geo" in net.bus:
        for k, geo in enumerate(net.bus.loc[buses, "geo"]):
            if isinstance(geo, str) and "coordinates" in geo:
                xy[k] = json.loads(geo)["coordinates"][:2]
    kinds = [groups[parent[b][1]][0][0] for b in order]
    pp_buses = np.array(sorted(merged), dtype=int)
    return xr.Dataset(
        {
            "vn_kv": ("bus", net.bus.loc[buses, "vn_kv"].to_numpy(float)),
            "p_load_mw": ("bus", p_load.to_numpy(float)),
            "q_load_mvar": ("bus", q_load.to_numpy(float)),
            "x_coord": ("bus", xy[:, 0]),
            "y_coord": ("bus", xy[:, 1]),
            "from_bus": ("branch", np.array([parent[b][0] + 1 for b in order], dtype=int)),
            "to_bus": ("branch", np.array(order, dtype=int) + 1),
            "r_ohm": ("branch", z_ohm.real),
            "x_ohm": ("branch", z_ohm.imag),
            "r_pu": ("branch", z_ohm.real / z_base),
            "x_pu": ("branch", z_ohm.imag / z_base),
            "ratio_pu": ("branch", np.array([ratio for _, _, ratio in params])),
            "s_max_mva": ("branch", np.array([s for _, s, _ in params])),
            "kind": ("branch", np.array(kinds, dtype=object)),
            "pp_elements": (
                "branch",
                np.array([" ".join(f"{t}:{i}" for t, i in groups[parent[b][1]]) for b in order], dtype=object),
            ),
            "bus_of_pp_bus": ("pp_bus", np.array([merged[b] + 1 for b in pp_buses], dtype=int)),
            "bus_of_pp_load": ("pp_load", at.to_numpy(int) + 1),
            "pp_load_p_mw": ("pp_load", (loads.p_mw * scale).to_numpy(float)),
            "pp_load_q_mvar": ("pp_load", (loads.q_mvar * scale).to_numpy(float)),
            "pandapower_json": ((), _net_json(net)),
            **_unit_variables(net, merged),
        },
        coords={
            "bus": buses + 1,
            "branch": np.arange(1, len(order) + 1),
            "pp_bus": pp_buses,
            "pp_load": loads.index.to_numpy(int),
        },
        attrs={
            "source": source,
            "root_bus": root + 1,
            "s_base_mva": S_BASE_MVA,
            "bus_numbering": "pandapower bus index + 1 (a merged bus: the lowest index of its group)",
            "units": "vn_kv: kV (the bus's voltage base); p_load_mw: MW; q_load_mvar: Mvar; r_ohm, x_ohm: ohm at "
            "the branch's child bus; r_pu, x_pu: per unit on s_base_mva and the child bus's vn_kv; ratio_pu: "
            "off-nominal voltage ratio parent/child (1 for lines); s_max_mva: MVA (lines: sqrt(3) vn_kv max_i_ka); "
            "gen_p_mw, gen_s_mva, storage_p_mw: MW, MVA; storage_e_mwh: MWh",
        },
    )


def build_feeder(source: str) -> xr.Dataset:
    """Load ``source`` (built-in name or pandapower JSON path) as a Feeder dataset."""
    return feeder_from_pandapower(load_pandapower(source), source)


def to_pandapower(feeder: xr.Dataset, v_slack_pu: float = 1.0) -> pp.pandapowerNet:
    """Build a pandapower net from a Feeder dataset: buses, lines (1 km each), base loads, slack.

    Loads are one per bus with the feeder's base values; callers change ``net.load.p_mw`` and
    ``q_mvar`` (net injections, generation negative) per step.
    """
    import pandapower as pp

    net = pp.create_empty_network(sn_mva=feeder.attrs["s_base_mva"])
    # vectorised creation (one call per table): element-by-element creation costs seconds on 69 buses,
    # and the AC check builds this net once per iteration
    buses = [int(b) for b in feeder.bus.values]
    created = pp.create_buses(net, len(buses), vn_kv=feeder.vn_kv.values.astype(float), name=[str(b) for b in buses])
    index_of = dict(zip(buses, (int(i) for i in created), strict=True))
    if "s_max_mva" in feeder:  # the rating at the child bus's voltage
        i_max = feeder.s_max_mva.values / (np.sqrt(3) * feeder.vn_kv.sel(bus=feeder.to_bus).values)
    else:  # a Feeder file written before ratings were in MVA
        i_max = feeder.i_max_ka.values.astype(float)
    if "ratio_pu" in feeder and np.any(feeder.ratio_pu.values != 1.0):
        raise FeederError("to_pandapower rebuilds lines only; a feeder with transformers is checked on its own net")
    pp.create_lines_from_parameters(
        net,
        [index_of[int(b)] for b in feeder.from_bus.values],
        [index_of[int(b)] for b in feeder.to_bus.values],
        length_km=1.0,
        r_ohm_per_km=feeder.r_ohm.values.astype(float),
        x_ohm_per_km=feeder.x_ohm.values.astype(float),
        c_nf_per_km=0.0,
        max_i_ka=np.where(np.isfinite(i_max) & (i_max > 0), i_max, 99.0),
        name=[str(int(br)) for br in feeder.branch.values],
    )
    pp.create_loads(
        net,
        [index_of[b] for b in buses],
        p_mw=feeder.p_load_mw.values.astype(float),
        q_mvar=feeder.q_load_mvar.values.astype(float),
    )
    pp.create_ext_grid(net, index_of[int(feeder.attrs["root_bus"])], vm_pu=v_slack_pu)
    return net


AC_TOLERANCE_MVA = 1e-11
"""Newton-Raphson's largest power mismatch: tight enough that a recycled run (which starts next to
the solution and may stop just below the tolerance) and a full run from a flat start agree to 1e-9
in every result, grid import and loading included; an iteration more costs little in lightsim2grid."""

AC_FALLBACK_TOLERANCE_MVA = 1e-9
"""The mismatch a run that cannot reach :data:`AC_TOLERANCE_MVA` is held to instead (the tolerance
of every AC check before 2026-12-06): on IEEE 69 (12.66 kV) double precision stops above 1e-11 MVA
at every step, in pandapower's solver and lightsim2grid's alike."""


def run_ac(net: pp.pandapowerNet, recycle: bool = False) -> None:
    """Newton-Raphson power flow, quietly (no numba warning), tight tolerance (:data:`AC_TOLERANCE_MVA`).

    Newton-Raphson runs in lightsim2grid's C++ solver where pandapower can use it (pandapower's
    ``lightsim2grid="auto"``: one slack, no voltage-dependent loads, no FACTS), on pandapower's own
    admittance matrix and injections; otherwise in pandapower's Python one.

    ``recycle``: the net ran before and only its loads' p and q changed since: the steps of
    pandapower's recycled run (its time-series ``recycle`` option: the internal case and admittance
    matrix are kept, the loads are read again, Newton-Raphson starts from the last voltages), but
    without pandapower's result tables: the results are in ``net._ppc`` (read them as
    :class:`feederflex.acpf.ACNet` does); ``net.res_*`` keep the last full run's.

    A run that does not converge to :data:`AC_TOLERANCE_MVA` is repeated from a flat start at
    :data:`AC_FALLBACK_TOLERANCE_MVA`; the net's later recycled runs keep that tolerance.

    Raises
    ------
    pandapower.auxiliary.LoadflowNotConverged
        If Newton-Raphson does not converge within 50 iterations at either tolerance.
    """
    import pandapower as pp
    from pandapower.auxiliary import LoadflowNotConverged

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if recycle:
                _recycled_run(net)
            else:
                pp.runpp(net, numba=False, lightsim2grid="auto", tolerance_mva=AC_TOLERANCE_MVA, max_iteration=50)
        except LoadflowNotConverged:
            pp.runpp(net, numba=False, lightsim2grid="auto", tolerance_mva=AC_FALLBACK_TOLERANCE_MVA, max_iteration=50)


def _recycled_run(net: pp.pandapowerNet) -> None:
    """pandapower's ``_recycled_powerflow`` (``recycle={"bus_pq": True}``) up to the point where it
    writes the result tables: new loads into the kept case, Newton-Raphson from the last voltages,
    pandapower's own branch flows and slack power (``pfsoln``) copied back into ``net._ppc``."""
    from pandapower.auxiliary import LoadflowNotConverged
    from pandapower.build_bus import _calc_pq_elements_and_add_on_ppc
    from pandapower.pd2ppc import _ppc2ppci
    from pandapower.pf.run_newton_raphson_pf import _run_newton_raphson_pf
    from pandapower.results import _copy_results_ppci_to_ppc

    options = net["_options"]
    options["recycle"] = {"bus_pq": True, "trafo": False, "gen": False}
    options["init_vm_pu"] = options["init_va_degree"] = "results"
    ppc = net["_ppc"]
    internal = ppc["internal"]
    ppci = {key: internal[key] for key in ("bus", "gen", "branch", "baseMVA")} | {"internal": internal}
    ppc["success"], ppc["iterations"], ppc["et"] = False, 0.0, 0.0
    _calc_pq_elements_and_add_on_ppc(net, ppc)
    ppci = _ppc2ppci(ppc, net, ppci=ppci)
    ppci["internal"] = internal
    result = _run_newton_raphson_pf(ppci, options)
    net["_ppc"] = _copy_results_ppci_to_ppc(result, ppc, options["mode"])
    net["converged"] = bool(net["_ppc"]["success"])
    if not net["converged"]:
        raise LoadflowNotConverged("the recycled power flow did not converge")


def bus_numbers(source: str) -> list[int]:
    """Bus numbers of a feeder, cheaply for built-ins; any other net is loaded (once per process)
    and checked radial."""
    if source in _BUILTIN_BUS_COUNT:
        return list(range(1, _BUILTIN_BUS_COUNT[source] + 1))
    return list(_buses_of(source, _stamp(source))[0])


def loaded_buses(source: str) -> list[int]:
    """Bus numbers with a base load (active or reactive) in the feeder ``source``."""
    return list(_buses_of(source, _stamp(source))[1])


def _stamp(source: str) -> float:
    """A JSON file's modification time (so an edited net is read again), 0 for other sources."""
    path = Path(source)
    return path.stat().st_mtime if not source.startswith(SIMBENCH_PREFIX) and path.is_file() else 0.0


@functools.lru_cache(maxsize=8)
def _buses_of(source: str, stamp: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """All and loaded bus numbers of ``source``: the workflow asks several times while it parses, and
    loading a SimBench grid takes seconds."""
    fd = build_feeder(source)
    loaded = (fd.p_load_mw.values > 0) | (fd.q_load_mvar.values > 0)
    return tuple(int(b) for b in fd.bus.values), tuple(int(b) for b in fd.bus.values[loaded])


def lindistflow(feeder: xr.Dataset, p_mw: np.ndarray, q_mvar: np.ndarray, v_root_pu: float) -> np.ndarray:
    """LinDistFlow voltages (pu, feeder bus order) for net loads ``p_mw``, ``q_mvar`` per bus: the
    model's equations evaluated without optimisation (branch flows = sum of the loads below;
    w_child = w_parent / ratio^2 - 2 (r P + x Q))."""
    buses = [int(b) for b in feeder.bus.values]
    pos = {b: k for k, b in enumerate(buses)}
    parent = [pos[int(b)] for b in feeder.from_bus.values]
    child = [pos[int(b)] for b in feeder.to_bus.values]
    ratio = feeder.ratio_pu.values if "ratio_pu" in feeder else np.ones(len(child))
    flow_p, flow_q = np.asarray(p_mw, float).copy(), np.asarray(q_mvar, float).copy()
    for k in reversed(range(len(child))):  # branches are in breadth-first order: children after parents
        flow_p[parent[k]] += flow_p[child[k]]
        flow_q[parent[k]] += flow_q[child[k]]
    s_base = float(feeder.attrs["s_base_mva"])
    w = np.zeros(len(buses))
    w[pos[int(feeder.attrs["root_bus"])]] = v_root_pu**2
    r, x = feeder.r_pu.values, feeder.x_pu.values
    for k in range(len(child)):
        drop = 2 * (r[k] * flow_p[child[k]] + x[k] * flow_q[child[k]]) / s_base
        w[child[k]] = w[parent[k]] / ratio[k] ** 2 - drop
    return np.sqrt(w)
