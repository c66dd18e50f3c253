"""A scenario's settings as typed, frozen objects: what the library takes.

``config/schema.yaml`` (``base``) is the user-facing contract: it types, describes and defaults
every key and rejects unknown ones. A scenario's settings are validated against it when the
workflow is parsed (:func:`feederflex.study.expand_scenarios`); :meth:`Settings.from_dict` turns
the validated mapping into these classes once, where a job or a library call starts, so the model
reads ``settings.mess.search.unit_time_s`` instead of chained dictionary lookups. The classes hold
types only; every default lives in the schema. ``tests/test_settings.py`` keeps the two in step:
each class has exactly the fields of its schema object, with matching types.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

End = Literal["cyclic", "at_least_initial", "free"]


@dataclass(frozen=True)
class EVControl:
    """``ev_control``: how the scenario's fleet charges."""

    mode: Literal["uncontrolled", "aggregate", "per_vehicle", "itinerary"]
    v2g: bool
    v2g_soc_min: float
    v2g_power_fraction: float
    v2g_efficiency: float
    repair_iterations: int


@dataclass(frozen=True)
class Grid:
    """``grid``: substation voltage, voltage band (pu) and import/export limits (MW)."""

    substation_v_pu: float
    v_min_pu: float
    v_max_pu: float
    max_import_mw: float | None
    max_export_mw: float | None
    no_backfeed_buses: tuple[int, ...]
    export_price_factor: float
    branch_limits: bool
    branch_limit_sides: int


@dataclass(frozen=True)
class PVUnit:
    """One entry of ``pv``: a PV unit at a bus."""

    name: str
    bus: int
    p_mw: float
    s_mva: float | None
    power_factor: float
    forecast_error: float


@dataclass(frozen=True)
class NetworkUnits:
    """``network_units``: whether and how the network's own sgen and storage join the model."""

    generation: bool
    storage: bool
    power_factor: float
    storage_end: End
    storage_cost_usd_per_mwh: float


@dataclass(frozen=True)
class Cycle:
    """What every battery states, built or to be planned: efficiencies, state-of-charge window and
    end condition."""

    eta_ch: float
    eta_dis: float
    soc_min: float
    soc_max: float
    soc_init: float
    end: End


@dataclass(frozen=True, kw_only=True)
class Battery(Cycle):
    """What fixed and mobile storage units share: ratings, the cycle, degradation cost and inverter."""

    name: str
    p_mw: float
    e_mwh: float
    s_mva: float | None
    power_factor: float
    cost_usd_per_mwh: float


@dataclass(frozen=True, kw_only=True)
class FessUnit(Battery):
    """One entry of ``fess``: a fixed battery at a bus."""

    bus: int


@dataclass(frozen=True, kw_only=True)
class MessUnit(Battery):
    """One entry of ``mess.units``: a battery on a truck, starting at a station."""

    initial_station: int


@dataclass(frozen=True)
class MessTransfer:
    """``mess.transfer``: what a trip costs."""

    cost_per_move_usd: float
    cost_usd_per_km: float
    labour_usd_per_h: float


@dataclass(frozen=True)
class MessSearch:
    """``mess.search``: the search between the parked baseline and the full routing model."""

    method: Literal["lp_moves", "unit_milp"]
    rounds: int
    unit_time_s: float
    departure_every_minutes: float | None
    candidates: int
    time_s: float


@dataclass(frozen=True)
class Mess:
    """``mess``: mobile storage units and how they are routed."""

    units: tuple[MessUnit, ...]
    routing: Literal["optimised", "fixed"]
    transfer: MessTransfer
    search: MessSearch
    symmetry_breaking: bool
    kva_polygon_sides: int


@dataclass(frozen=True, kw_only=True)
class PlannedStorage(Cycle):
    """``planning.fixed`` and ``planning.mobile``: the batteries a planning scenario may build."""

    min_units: int
    max_units: int
    candidates: tuple[int, ...] | None
    p_min_mw: float
    p_max_mw: float
    hours: float
    cost_per_kw: float
    om_fraction: float
    rental_per_month: float
    cost_per_mwh: float


@dataclass(frozen=True, kw_only=True)
class PlannedMobile(PlannedStorage):
    """``planning.mobile``: also whether the units move on the transport network."""

    moving: bool


@dataclass(frozen=True)
class PlanningWeights:
    """``planning.weights``: w1-w4 of 001 eq. 13."""

    investment: float
    om: float
    energy: float
    migration: float


@dataclass(frozen=True)
class RepresentativeDay:
    """One entry of ``planning.days``: a profile day and the days a year it stands for."""

    day: str
    weight: float


@dataclass(frozen=True)
class Planning:
    """``planning``: siting and sizing of fixed and mobile batteries (001)."""

    enabled: bool
    currency: str
    days_per_year: float
    days: tuple[RepresentativeDay, ...]
    interest_rate: float
    lifetime_years: float
    weights: PlanningWeights
    fixed: PlannedStorage
    mobile: PlannedMobile


@dataclass(frozen=True)
class Inverters:
    """``inverters``: reactive power of PV and storage inverters."""

    reactive_control: bool
    kva_polygon_sides: int
    q_cost_usd_per_mvarh: float


@dataclass(frozen=True)
class DRUnit:
    """One entry of ``dr``: demand response at a loaded bus."""

    name: str
    bus: int
    curtail_max_mw: float
    curtail_max_mwh: float | None
    curtail_price_usd_per_mwh: float
    shift_max_mw: float
    shift_price_usd_per_mwh: float
    forecast_error: float


@dataclass(frozen=True)
class Risk:
    """``risk``: forecast-error risk terms."""

    enabled: bool
    tangents: int
    reserve_price_usd_per_mwh: float | None
    curtailment_price_usd_per_mwh: float | None


@dataclass(frozen=True)
class Quadratic:
    """``objective.quadratic``: the piecewise-linear outer approximation of squared terms."""

    tangents: int
    refine_rounds: int
    tolerance: float


@dataclass(frozen=True)
class Objective:
    """``objective``: weights, scales, bounds and fuzzy ends of the catalogue's terms, by term name."""

    weights: Mapping[str, float]
    scales: Mapping[str, float]
    bounds: Mapping[str, float]
    fuzzy: Mapping[str, tuple[float, float]]
    quadratic: Quadratic


@dataclass(frozen=True)
class Operation:
    """``operation``: how the day is operated on actual data."""

    mode: Literal["day_ahead", "rolling", "on_violation", "rules"]
    lookahead_steps: int | None
    keep_integers: bool


@dataclass(frozen=True)
class ACCorrection:
    """``ac_correction``: re-solves against the AC power flow."""

    enabled: bool
    max_iterations: int
    tolerance_pu: float
    keep_integers: bool


@dataclass(frozen=True)
class Solver:
    """``solver``: HiGHS limits."""

    time_limit_s: float
    mip_gap: float
    threads: int


@dataclass(frozen=True)
class Subarea:
    """One metered subarea of ``regional.subareas``."""

    name: str
    bus: int
    kind: Literal["residential", "commercial"]
    microgrid: str
    surplus_to: str | None


@dataclass(frozen=True)
class Rules:
    """``regional.rules``: 004's thresholds and windows."""

    soc_low: float
    soc_high_commercial: float
    soc_high_residential: float
    soc_stop: float
    peak_commercial: tuple[tuple[float, ...], ...]
    peak_residential: tuple[tuple[float, ...], ...]
    valley: tuple[tuple[float, ...], ...]
    day_start_h: float
    periodic_passes: int


@dataclass(frozen=True)
class Regional:
    """``regional``: metered subareas, their bills and the rules of ``operation.mode: rules``."""

    currency: str
    ev_discharge_price_per_mwh: float
    subareas: tuple[Subarea, ...]
    rules: Rules


@dataclass(frozen=True)
class Settings:
    """A scenario's effective settings (``base`` of the schema with the scenario's overrides)."""

    day: str
    ev_fleet: str | None
    ev_control: EVControl
    grid: Grid
    network_units: NetworkUnits
    pv: tuple[PVUnit, ...]
    fess: tuple[FessUnit, ...]
    planning: Planning
    mess: Mess
    inverters: Inverters
    dr: tuple[DRUnit, ...]
    risk: Risk
    objective: Objective
    operation: Operation
    ac_correction: ACCorrection
    regional: Regional
    solver: Solver

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> Settings:
        """The typed form of validated settings (every key present; the schema filled defaults)."""
        return _build(cls, settings, "settings")

    def with_sections(self, settings: Mapping[str, Any], sections: Iterable[str]) -> Settings:
        """These settings with the top-level ``sections`` built from the validated mapping
        ``settings`` and every other field shared (the classes are frozen): a scenario that
        overrides two sections of base converts only those."""
        hints, _ = _fields(typing.cast(type, Settings))  # cast: mypy takes the class for an unhashable instance
        return dataclasses.replace(self, **{k: _build(hints[k], settings[k], f"settings.{k}") for k in sections})

    def to_dict(self) -> dict[str, Any]:
        """Plain data again (lists and dicts), as the schema describes it."""
        return _plain(self)


def as_settings(settings: Settings | Mapping[str, Any]) -> Settings:
    """``settings`` as :class:`Settings`: library entry points accept validated mappings too."""
    return settings if isinstance(settings, Settings) else Settings.from_dict(settings)


def _build(kind: Any, value: Any, where: str) -> Any:
    """``value`` as the type ``kind`` (a settings class, a tuple of one, a mapping or a scalar)."""
    origin = typing.get_origin(kind)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints, names = _fields(kind)
        missing = [n for n in names if n not in value]
        extra = [k for k in value if k not in names]
        if missing or extra:
            raise KeyError(f"{where}: keys {missing} missing and {extra} unknown for {kind.__name__} (validate first)")
        return kind(**{n: _build(hints[n], value[n], f"{where}.{n}") for n in names})
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(_build(item, v, f"{where}[{k}]") for k, v in enumerate(value))
    if origin in (Mapping, dict) or kind is Mapping:
        return types.MappingProxyType({k: _scalar(v) for k, v in value.items()})
    return _scalar(value)


@functools.cache
def _fields(kind: type) -> tuple[dict[str, Any], list[str]]:
    """Type hints and field names of a settings class (resolved once: a study may have thousands of scenarios)."""
    return typing.get_type_hints(kind), [f.name for f in dataclasses.fields(kind)]


def _scalar(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
