"""How big a scenario's model is before it is built: what its variables and constraints grow with.

The workflow sizes a job's memory and runtime by this (:mod:`feederflex.resources`), so it lives
next to the blocks whose shapes it counts: the network and every unit have variables per bus (or
unit) and step; each MESS unit has trip arcs between every pair of stations in every step; the
aggregate EV block has one envelope per pool (bus, leaving step) and step, the per-vehicle block
(and the aggregate repair) one set of variables per vehicle and step.
"""

from __future__ import annotations

from feederflex.settings import Settings


def model_scale(
    settings: Settings,
    *,
    buses: int,
    steps: int,
    stations: int,
    ev_buses: int = 0,
    vehicles: int = 0,
) -> int:
    """A number proportional to the model's variables and constraints (not a count of either).

    ``settings`` are the scenario's effective settings; ``ev_buses`` and ``vehicles`` describe its
    fleet (0 without one).
    """
    size = buses * steps * (1 + len(settings.pv) + len(settings.fess) + planning_candidates(settings, buses))
    size += steps * len(settings.mess.units) * stations * stations
    if settings.ev_fleet is not None and settings.ev_control.mode != "uncontrolled":
        size += ev_buses * steps * steps + vehicles * steps
    return size


def planning_candidates(settings: Settings, buses: int) -> int:
    """Batteries a planning scenario may build (each a fixed-storage unit of the model)."""
    plan = settings.planning
    if not plan.enabled:
        return 0
    kinds = (plan.fixed, plan.mobile)
    return sum(len(k.candidates) if k.candidates is not None else buses - 1 for k in kinds if k.max_units)
