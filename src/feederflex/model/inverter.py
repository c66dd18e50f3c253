"""Inverter capability: reactive power within a power-factor limit and the kVA circle (002 eq. 14-15, 22).

One function serves PV, fixed (FESS) and mobile (MESS) storage inverters. For active power p (net
output, negative when charging), its magnitude |p| and reactive power q (injected, Mvar):

    |q| <= tan(acos(pf)) |p|                       power factor at least pf (002 eq. 15, 22)
    (p, q) inside the regular n-gon inscribed in the circle of radius S   (p^2 + q^2 <= S^2)

The polygon has a vertex at q = 0 (and at the q axis when n is a multiple of 4), so the rated
active power is reachable at unity power factor; its sides are  cos(a_k) p + sin(a_k) q <= cos(pi/n) S,
a_k = (2k + 1) pi / n. Being inscribed, it never admits more than the circle; it gives up at most
1 - cos(pi/n) of S in the directions half-way between vertices (:func:`polygon_error`:
3.4 % for 12 sides, 1.9 % for 16, 0.86 % for 24, 0.48 % for 32).

A linearised |q| (``q_abs``) is kept for the ``inverter_q_mvarh`` objective term: reactive
current costs inverter losses, and the cost keeps q at zero where it has no value instead of an
arbitrary point of the feasible set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pyomo.environ as pyo

from feederflex.settings import FessUnit, MessUnit, PVUnit


def polygon_sides(n_sides: int) -> list[tuple[float, float, float]]:
    """(cos, sin, scale) of each side of a regular polygon inscribed in the unit circle, a vertex at angle 0."""
    return [
        (
            math.cos((2 * k + 1) * math.pi / n_sides),
            math.sin((2 * k + 1) * math.pi / n_sides),
            math.cos(math.pi / n_sides),
        )
        for k in range(n_sides)
    ]


def polygon_error(n_sides: int) -> float:
    """Largest shortfall of the inscribed polygon against the circle, as a fraction of the radius."""
    return 1.0 - math.cos(math.pi / n_sides)


def apparent_rating(unit: PVUnit | FessUnit | MessUnit) -> float:
    """The inverter's apparent-power rating, MVA: ``s_mva``, or the active rating when it is null."""
    return float(unit.p_mw if unit.s_mva is None else unit.s_mva)


def tan_phi(power_factor: float, reactive_control: bool = True) -> float:
    """Largest |q| / |p| at the given lowest power factor (0 without reactive control).

    Raises
    ------
    ValueError
        If the power factor is outside (0, 1].
    """
    if not 0.0 < float(power_factor) <= 1.0:
        raise ValueError(f"power factor must be in (0, 1], got {power_factor}")
    return math.tan(math.acos(float(power_factor))) if reactive_control else 0.0


def add_pq_limits(
    blk: pyo.Block,
    sets: Sequence,
    p_net: Callable,
    p_abs: Callable,
    q: Callable,
    s_max: Callable,
    tan_phi_of: Callable,
    n_sides: int,
) -> None:
    """Add the power-factor and kVA-polygon limits of one kind of inverter to ``blk``.

    Parameters
    ----------
    blk
        The component's block; gets ``K`` (polygon sides), ``q_pf_up``, ``q_pf_down``, ``kva``,
        ``q_abs`` (Mvar, >= |q|) and ``q_abs_up``, ``q_abs_down``.
    sets
        Index sets of the inverter variables (e.g. units and steps).
    p_net, p_abs, q, s_max, tan_phi_of
        Functions of an index returning net active output (MW, discharge/generation positive),
        a bound on |p| (MW, e.g. charge + discharge), reactive power (Mvar), the apparent-power
        rating (MVA, may be an expression such as S x parked) and tan(acos(pf)) (0 = unity).
    n_sides
        Sides of the inscribed polygon (at least 4).
    """
    sides = polygon_sides(int(n_sides))
    blk.K = pyo.Set(initialize=range(len(sides)))

    def pf(sign):
        def rule(b, *i):
            return sign * q(*i) <= tan_phi_of(*i) * p_abs(*i)

        return rule

    blk.q_pf_up = pyo.Constraint(*sets, rule=pf(1.0))
    blk.q_pf_down = pyo.Constraint(*sets, rule=pf(-1.0))

    def kva(b, *ik):
        *i, k = ik
        cos_k, sin_k, scale = sides[k]
        return cos_k * p_net(*i) + sin_k * q(*i) <= scale * s_max(*i)

    blk.kva = pyo.Constraint(*sets, blk.K, rule=kva)
    blk.q_abs = pyo.Var(*sets, within=pyo.NonNegativeReals, doc="|q| of the inverter, Mvar")
    blk.q_abs_up = pyo.Constraint(*sets, rule=lambda b, *i: b.q_abs[i] >= q(*i))
    blk.q_abs_down = pyo.Constraint(*sets, rule=lambda b, *i: b.q_abs[i] >= -q(*i))
