"""Feeders: pandapower networks as radial Feeder datasets, and back to pandapower for AC checks.

Bus numbering: feederflex bus numbers are the pandapower bus index plus one, so that the
IEEE 33-bus feeder keeps the numbering of Baran and Wu (1989) and of the papers (substation =
bus 1, the far end of the main feeder = bus 18). Branches are numbered 1..n_bus-1 in breadth-first
order from the substation; every branch runs from the parent (towards the substation) to the child.
Impedances are given in ohm and in per unit on ``s_base_mva`` (1 MVA) and the bus voltage base.
"""

from __future__ import annotations

import json
import warnings
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from feederflex.errors import FeederError

if TYPE_CHECKING:
    import pandapower as pp

S_BASE_MVA = 1.0
BUILTIN_FEEDERS = ("case33bw", "case69", "case33bw_x3")
_BUILTIN_BUS_COUNT = {"case33bw": 33, "case69": 69, "case33bw_x3": 97}
_PACKAGE_TABLES = {"case69": "case69.csv"}  # built-ins shipped as tables in feederflex/data


def load_pandapower(source: str) -> pp.pandapowerNet:
    """Return a pandapower net: a built-in name (``case33bw``, ``case69``) or the path of a pandapower JSON."""
    import pandapower as pp
    import pandapower.networks as pn

    if source == "case33bw_x3":
        return case33bw_x3()
    if source in _PACKAGE_TABLES:
        return radial_table_net(_PACKAGE_TABLES[source])
    if source in BUILTIN_FEEDERS:
        return getattr(pn, source)()
    path = Path(source)
    if not path.is_file():
        raise FeederError(
            f"network.source: {source!r} is neither a built-in feeder "
            f"({', '.join(sorted(BUILTIN_FEEDERS))}) nor an existing pandapower JSON file"
        )
    return pp.from_json(str(path))


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


def _check_supported(net: pp.pandapowerNet, source: str) -> None:
    for table in ("trafo", "trafo3w", "impedance", "dcline", "xward", "ward"):
        if table in net and len(net[table]) and net[table]["in_service"].any():
            raise FeederError(
                f"network {source!r}: in-service {table} elements are not supported "
                "(a feeder is buses, lines, loads and one external grid)"
            )
    if len(net.ext_grid[net.ext_grid.in_service]) != 1:
        raise FeederError(f"network {source!r}: expected exactly one in-service ext_grid (the substation)")


def _in_service_lines(net: pp.pandapowerNet):
    lines = net.line[net.line.in_service]
    if len(net.switch):
        open_line_switches = net.switch[(net.switch.et == "l") & ~net.switch.closed.astype(bool)]
        lines = lines.drop(index=open_line_switches.element.unique(), errors="ignore")
    return lines


def _tree_from(root: int, buses: np.ndarray, lines, source: str) -> tuple[dict[int, tuple[int, int]], list[int]]:
    """Breadth-first tree from the substation: each bus's (parent bus, line) and the buses in
    radial order; a bus the tree cannot reach is a :class:`FeederError`."""
    neighbours: dict[int, list[tuple[int, int]]] = {int(b): [] for b in buses}
    for idx, line in lines.iterrows():
        neighbours[int(line.from_bus)].append((int(line.to_bus), int(idx)))
        neighbours[int(line.to_bus)].append((int(line.from_bus), int(idx)))
    parent_line: dict[int, tuple[int, int]] = {}
    order: list[int] = []
    seen = {root}
    queue = deque([root])
    while queue:
        bus = queue.popleft()
        for other, idx in sorted(neighbours[bus]):
            if other in seen:
                continue
            seen.add(other)
            parent_line[other] = (bus, idx)
            order.append(other)
            queue.append(other)
    if len(seen) != len(buses):
        missing = sorted(int(b) + 1 for b in set(map(int, buses)) - seen)
        raise FeederError(
            f"network {source!r} is meshed or disconnected: buses {missing[:10]} "
            "cannot be reached from the substation along a tree"
        )
    return parent_line, order


def feeder_from_pandapower(net: pp.pandapowerNet, source: str = "pandapower net") -> xr.Dataset:
    """Convert a radial pandapower net into a Feeder dataset.

    Raises
    ------
    FeederError
        If the in-service lines do not form one tree spanning every in-service bus.
    """
    _check_supported(net, source)
    buses = net.bus[net.bus.in_service].index.to_numpy()
    lines = _in_service_lines(net)
    root = int(net.ext_grid[net.ext_grid.in_service].bus.iloc[0])
    if len(lines) != len(buses) - 1:
        kind = "meshed" if len(lines) > len(buses) - 1 else "disconnected"
        raise FeederError(
            f"network {source!r} is {kind}: {len(lines)} in-service lines for {len(buses)} buses; "
            f"a radial feeder has exactly {len(buses) - 1}"
        )
    parent_line, order = _tree_from(root, buses, lines, source)

    vn_kv = net.bus.loc[buses, "vn_kv"].to_numpy(float)
    z_base = net.bus.vn_kv.loc[order].to_numpy(float) ** 2 / S_BASE_MVA
    line_rows = lines.loc[[parent_line[b][1] for b in order]]
    parallel = line_rows.parallel.to_numpy(float)
    r_ohm = line_rows.r_ohm_per_km.to_numpy(float) * line_rows.length_km.to_numpy(float) / parallel
    x_ohm = line_rows.x_ohm_per_km.to_numpy(float) * line_rows.length_km.to_numpy(float) / parallel
    i_max_ka = line_rows.max_i_ka.to_numpy(float) * parallel

    loads = net.load[net.load.in_service]
    scale = loads.scaling.to_numpy(float) if "scaling" in loads else 1.0
    p_load = (loads.p_mw * scale).groupby(loads.bus).sum().reindex(buses, fill_value=0.0)
    q_load = (loads.q_mvar * scale).groupby(loads.bus).sum().reindex(buses, fill_value=0.0)

    xy = np.full((len(buses), 2), np.nan)
    if "geo" in net.bus:
        for k, geo in enumerate(net.bus.loc[buses, "geo"]):
            if isinstance(geo, str) and "coordinates" in geo:
                xy[k] = json.loads(geo)["coordinates"][:2]

    bus_no = buses.astype(int) + 1
    branch_no = np.arange(1, len(order) + 1)
    ds = xr.Dataset(
        {
            "vn_kv": ("bus", vn_kv),
            "p_load_mw": ("bus", p_load.to_numpy(float)),
            "q_load_mvar": ("bus", q_load.to_numpy(float)),
            "x_coord": ("bus", xy[:, 0]),
            "y_coord": ("bus", xy[:, 1]),
            "from_bus": ("branch", np.array([parent_line[b][0] + 1 for b in order])),
            "to_bus": ("branch", np.array(order) + 1),
            "r_ohm": ("branch", r_ohm),
            "x_ohm": ("branch", x_ohm),
            "r_pu": ("branch", r_ohm / z_base),
            "x_pu": ("branch", x_ohm / z_base),
            "i_max_ka": ("branch", i_max_ka),
            "pp_line": ("branch", line_rows.index.to_numpy(int)),
        },
        coords={"bus": bus_no, "branch": branch_no},
        attrs={
            "source": source,
            "root_bus": root + 1,
            "s_base_mva": S_BASE_MVA,
            "bus_numbering": "pandapower bus index + 1",
            "units": "vn_kv: kV; p_load_mw: MW; q_load_mvar: Mvar; r_ohm, x_ohm: ohm; "
            "r_pu, x_pu: per unit on s_base_mva and the bus vn_kv; i_max_ka: kA",
        },
    )
    return ds


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
    i_max = feeder.i_max_ka.values.astype(float)
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


def run_ac(net: pp.pandapowerNet) -> None:
    """Newton-Raphson power flow, quietly (no numba warning), tight tolerance."""
    import pandapower as pp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, numba=False, tolerance_mva=1e-9, max_iteration=50)


def bus_numbers(source: str) -> list[int]:
    """Bus numbers of a feeder, cheaply for built-ins; a JSON network is loaded and checked radial."""
    if source in _BUILTIN_BUS_COUNT:
        return list(range(1, _BUILTIN_BUS_COUNT[source] + 1))
    return [int(b) for b in build_feeder(source).bus.values]


def loaded_buses(source: str) -> list[int]:
    """Bus numbers with a base load (active or reactive) in the feeder ``source``."""
    fd = build_feeder(source)
    loaded = (fd.p_load_mw.values > 0) | (fd.q_load_mvar.values > 0)
    return [int(b) for b in fd.bus.values[loaded]]
