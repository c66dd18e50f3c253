"""Every rule about a study's values and references that the JSON schema cannot state, in one place.

Parse time (:func:`feederflex.study.load_study`, when the workflow is parsed) calls
:func:`check_study`, :func:`check_scenario` and :func:`check_multiobjective`; the library calls
:func:`check_inputs` (prepared datasets against a scenario's settings) and
:func:`check_operation` before it builds a model. The rules both need (a unit's bus, demand
response on a loaded bus, a mobile unit's station, the look-ahead window) are written once, below,
and raise the error class of their caller.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feederflex.errors import ConfigError, FeederflexError, InputError, RollingError
from feederflex.settings import FessUnit, MessUnit, PVUnit, Settings, as_settings

if TYPE_CHECKING:  # the parse-time checks must not import Pyomo
    from feederflex.model import ScenarioData

MODES = ("day_ahead", "rolling", "on_violation", "rules")  # operation.mode


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def check_unit_buses(settings: Settings, buses: Iterable[int], where: str, error: type[FeederflexError]) -> None:
    """Every PV, fixed storage and DR unit sits on a bus of the feeder; unit names are unique."""
    buses = set(buses)
    for kind in ("pv", "fess", "dr"):
        names = [unit.name for unit in getattr(settings, kind)]
        if len(set(names)) != len(names):
            raise error(f"{_prefix(where)}{kind} unit names must be unique, got {names}")
        for k, unit in enumerate(getattr(settings, kind)):
            if unit.bus not in buses:
                raise error(
                    f"{_prefix(where)}{kind}[{k}] ({unit.name}).bus = {unit.bus} is not a bus of the feeder "
                    f"(buses {min(buses)}..{max(buses)})"
                )


def check_backfeed_buses(
    settings: Settings, buses: Iterable[int], where: str, error: type[FeederflexError], root: int | None = None
) -> None:
    """``grid.no_backfeed_buses`` are buses of the feeder other than its substation ``root``."""
    numbers = sorted(int(b) for b in buses if b != root)
    bad = sorted(set(settings.grid.no_backfeed_buses) - set(numbers))
    if bad:
        raise error(
            f"{_prefix(where)}grid.no_backfeed_buses: {bad} are not buses of the feeder with an incoming branch "
            f"(buses {numbers[0]}..{numbers[-1]}{'' if root is None else f', substation {root} excluded'})"
        )


def check_regional(settings: Settings, buses: Iterable[int] | None, where: str, error: type[FeederflexError]) -> None:
    """``regional.subareas``: unique names on buses of the feeder, ``surplus_to`` naming another
    subarea; ``operation.mode: rules`` needs subareas and operates PV and EVs only (004)."""
    areas = settings.regional.subareas
    names = [a.name for a in areas]
    numbers = None if buses is None else {int(b) for b in buses}
    for k, area in enumerate(areas):
        key = f"{_prefix(where)}regional.subareas[{k}] ({area.name})"
        if names.count(area.name) > 1:
            raise error(f"{key}.name is used twice; every subarea needs its own name")
        if numbers is not None and area.bus not in numbers:
            raise error(f"{key}.bus = {area.bus} is not a bus of the feeder")
        if area.surplus_to is not None and (area.surplus_to not in names or area.surplus_to == area.name):
            raise error(f"{key}.surplus_to = {area.surplus_to!r} is not another subarea (have {names})")
    if settings.operation.mode != "rules":
        return
    if not areas:
        raise error(f"{_prefix(where)}operation.mode = rules needs regional.subareas (the subareas the rules operate)")
    if settings.fess or settings.mess.units or settings.dr or settings.planning.enabled:
        raise error(
            f"{_prefix(where)}operation.mode = rules operates PV and EVs only (004); this scenario also has "
            "fixed or mobile storage, demand response or planning: use an optimised mode for those"
        )
    if settings.ev_control.mode != "uncontrolled":
        raise error(
            f"{_prefix(where)}operation.mode = rules decides the EVs itself; ev_control.mode = "
            f"{settings.ev_control.mode!r} would be a second controller: leave it uncontrolled"
        )


def check_bills(config: Mapping, scenarios: Mapping[str, Mapping]) -> None:
    """``bills.baselines`` name scenarios with subareas, at most one per day and label."""
    for label, names in config["bills"]["baselines"].items():
        key = f"bills.baselines.{label}"
        unknown = [n for n in names if n not in scenarios]
        if unknown:
            raise ConfigError(f"{key}: {unknown} are not scenarios of the study (have {list(scenarios)})")
        bare = [n for n in names if not scenarios[n]["regional"]["subareas"]]
        if bare:
            raise ConfigError(f"{key}: {bare} have no regional.subareas, so they have no bills to compare with")
        days = [scenarios[n]["day"] for n in names]
        twice = sorted({d for d in days if days.count(d) > 1})
        if twice:
            raise ConfigError(f"{key}: more than one scenario on day {twice}; give one baseline per day")


def check_dr_loads(
    settings: Settings, loaded: Iterable[int], source: str, where: str, error: type[FeederflexError]
) -> None:
    """Demand response sits on buses with load (``loaded``) of the feeder ``source``."""
    loaded = set(loaded)
    for k, unit in enumerate(settings.dr):
        if unit.bus not in loaded:
            raise error(
                f"{_prefix(where)}dr[{k}] ({unit.name}).bus = {unit.bus} has no load in the feeder "
                f"({source}): demand response needs load to curtail or shift (buses with load: "
                f"{sorted(loaded)[:12]}...)"
            )


def check_mess_stations(
    units: tuple[MessUnit, ...], stations: list[int], where: str, error: type[FeederflexError]
) -> None:
    """Mobile units have unique names and start at a station."""
    names = [unit.name for unit in units]
    if len(set(names)) != len(names):
        raise error(f"{_prefix(where)}mess unit names must be unique, got {names}")
    for k, unit in enumerate(units):
        if unit.initial_station not in stations:
            raise error(
                f"{_prefix(where)}mess.units[{k}] ({unit.name}).initial_station = {unit.initial_station} "
                f"is not one of transport.stations {stations}"
            )


def check_operation(
    mode: str,
    lookahead: int | None,
    n_steps: int,
    where: str = "",
    error: type[FeederflexError] = RollingError,
    step_minutes: int | None = None,
) -> None:
    """A known ``operation.mode``; ``lookahead_steps`` null or 1..the day's steps, and only when rolling."""
    if mode not in MODES:
        raise error.at(where, "operation.mode", repr(mode), f"expected one of {list(MODES)}")
    if lookahead is not None and not 1 <= int(lookahead) <= n_steps:
        steps = f"{n_steps} steps" + (f" of time.step_minutes = {step_minutes}" if step_minutes else "")
        what = "is longer than the day" if int(lookahead) > n_steps else "is not a window of the day"
        raise error(
            f"{_prefix(where)}operation.lookahead_steps = {lookahead} {what} ({steps}) "
            f"and there is no next-day data; expected 1..{n_steps} or null (the rest of the day)"
        )
    if lookahead is not None and mode != "rolling":
        raise error(
            f"{_prefix(where)}operation.lookahead_steps = {lookahead} is only used by operation.mode = rolling, "
            f"not {mode!r}; set it to null or change the mode"
        )


def check_scenario(
    settings: Settings | Mapping[str, Any],
    config: Mapping,
    where: str,
    bus_numbers: Iterable[int] | None,
    loaded_buses: Iterable[int] | None = None,
) -> None:
    """A scenario's effective settings against the study (days, fleets, stations) and, where
    known, the feeder's buses and loaded buses; ``where`` names the file and scenario."""
    settings = as_settings(settings)
    if settings.day not in config["days"]:
        raise ConfigError(f"{where}: day {settings.day!r} is not defined in days (have {sorted(config['days'])})")
    fleet = settings.ev_fleet
    if fleet is not None and fleet not in config["fleets"]:
        raise ConfigError(f"{where}: ev_fleet {fleet!r} is not defined in fleets (have {sorted(config['fleets'])})")
    start_h = float(config["days"][settings.day].get("start_h", 0))
    if start_h and (fleet is not None or settings.mess.units):
        raise ConfigError(
            f"{where}: days.{settings.day}.start_h = {start_h:g}, but the scenario has an EV fleet or mobile "
            "storage, whose arrival and travel times are hours of the day from the first step; use start_h: 0"
        )
    step_minutes = int(config["time"]["step_minutes"])
    n_steps = round(float(config["time"]["hours"]) * 60 / step_minutes)
    check_operation(
        settings.operation.mode, settings.operation.lookahead_steps, n_steps, where, ConfigError, step_minutes
    )
    grid = settings.grid
    if grid.v_min_pu >= grid.v_max_pu:
        raise ConfigError(f"{where}: grid.v_min_pu {grid.v_min_pu} must be below grid.v_max_pu {grid.v_max_pu}")
    if not grid.v_min_pu <= grid.substation_v_pu <= grid.v_max_pu:
        raise ConfigError(
            f"{where}: grid.substation_v_pu = {grid.substation_v_pu} is outside the voltage band "
            f"[grid.v_min_pu, grid.v_max_pu] = [{grid.v_min_pu}, {grid.v_max_pu}]: the "
            "substation bus would violate it "
            "at every step"
        )
    control = settings.ev_control
    hours = float(config["time"]["hours"])
    if fleet is not None and control.mode in ("aggregate", "itinerary") and abs(hours - 24.0) > 1e-9:
        raise ConfigError(
            f"{where}: ev_control.mode = {control.mode} needs a 24-hour (periodic) day, but time.hours = {hours:g}; "
            "use 24 hours or another ev_control.mode"
        )
    if control.v2g and fleet is None:
        raise ConfigError(
            f"{where}: ev_control.v2g = true, but the scenario has no ev_fleet: there are no vehicles to "
            "discharge; set ev_fleet or v2g: false"
        )
    for term, ends in settings.objective.fuzzy.items():
        if float(ends[0]) == float(ends[1]):
            raise ConfigError(
                f"{where}: objective.fuzzy.{term} = {list(ends)}: best and reference are equal, so the membership "
                "is undefined; give two different values"
            )
    if bus_numbers is not None:
        check_unit_buses(settings, bus_numbers, where, ConfigError)
        check_backfeed_buses(settings, bus_numbers, where, ConfigError)
    check_regional(settings, bus_numbers, where, ConfigError)
    if loaded_buses is not None:
        check_dr_loads(settings, loaded_buses, config["network"]["source"], where, ConfigError)
    risk = settings.risk
    reserve, curtailment = risk.reserve_price_usd_per_mwh, risk.curtailment_price_usd_per_mwh
    if reserve is not None and curtailment is not None and reserve < curtailment:
        raise ConfigError(
            f"{where}: risk.reserve_price_usd_per_mwh {risk.reserve_price_usd_per_mwh} must be at least "
            f"risk.curtailment_price_usd_per_mwh {risk.curtailment_price_usd_per_mwh} (else the "
            "risk cost is unbounded)"
        )
    check_planning(
        settings, bus_numbers, where, ConfigError, stations=[s["bus"] for s in config["transport"]["stations"]]
    )
    check_planning_days(settings, config, where)
    mess_units = settings.mess.units
    check_mess_stations(mess_units, [s["bus"] for s in config["transport"]["stations"]], where, ConfigError)
    for kind, units in (("fess", settings.fess), ("mess.units", mess_units)):
        for k, unit in enumerate(units):
            if not unit.soc_min <= unit.soc_init <= unit.soc_max:
                raise ConfigError(
                    f"{where}: {kind}[{k}] ({unit.name}): initial energy outside the SOC window, need "
                    f"soc_min <= soc_init <= soc_max, got {unit.soc_min}, {unit.soc_init}, {unit.soc_max}"
                )


def check_study_settings(config: Mapping) -> None:
    """Study-wide checks of values the schema cannot judge alone (no feeder needed)."""
    hours, step = float(config["time"]["hours"]), int(config["time"]["step_minutes"])
    if abs(hours * 60 / step - round(hours * 60 / step)) > 1e-9:
        raise ConfigError(
            f"time.hours = {hours} is not a whole number of time.step_minutes = {step} steps "
            f"({hours * 60:g} min / {step} min = {hours * 60 / step:g})"
        )
    for name, day in config["days"].items():
        try:
            datetime.date.fromisoformat(day["date"])
        except ValueError:
            raise ConfigError(f"days.{name}.date = {day['date']!r} is not a calendar date (YYYY-MM-DD)") from None
        source, file = day.get("source", "shapes"), day.get("file")
        if source == "file" and (file is None or not Path(file).is_file()):
            raise ConfigError(
                f"days.{name}.file = {file!r}: source file needs an existing CSV or NetCDF time series "
                "(paths are relative to the working directory)"
            )
        if source != "file" and file is not None:
            raise ConfigError(f"days.{name}.file = {file!r} is given, but days.{name}.source is {source!r}, not file")
        if source == "net" and day.get("start_h", 0):
            raise ConfigError(f"days.{name}.start_h: a net day starts at midnight of the picked day; use 0")
    buses = [s["bus"] for s in config["transport"]["stations"]]
    twice = sorted({b for b in buses if buses.count(b) > 1})
    if twice:
        raise ConfigError(f"transport.stations: bus {twice} listed more than once; each station is one bus")
    for name, fleet in config["fleets"].items():
        params = fleet.get("distributions", {})
        commute = params.get("commute", {})
        for table in ("work_arrival_table", "home_arrival_table"):
            for k, (hour, probability) in enumerate(commute.get(table, [])):
                if not 0.0 <= probability <= 1.0:
                    key = f"fleets.{name}.distributions.commute.{table}[{k}]"
                    raise ConfigError.at("", key, [hour, probability], "a probability must be in [0, 1]")
        for k, drive in enumerate(commute.get("drive_h", [])):
            if drive >= hours:
                raise ConfigError(
                    f"fleets.{name}.distributions.commute.drive_h[{k}] = {drive} h is not shorter than the "
                    f"horizon time.hours = {hours} h: the trip could never end inside the day"
                )
    transport = config["transport"]
    for k, delay in enumerate(transport["delay_h"]):
        if delay + transport["install_h"] >= hours:
            raise ConfigError(
                f"transport.delay_h[{k}] = {delay} h (+ install_h {transport['install_h']} h) is not shorter "
                f"than the horizon time.hours = {hours} h: no trip could end inside the day"
            )


def check_study(config: Mapping, bus_numbers: Iterable[int] | None) -> None:
    """Study-wide checks: values (:func:`check_study_settings`) and the feeder's buses (fleet buses)."""
    check_study_settings(config)
    if bus_numbers is None:
        return
    buses = set(bus_numbers)
    for name, fleet in config["fleets"].items():
        bad = sorted(set(fleet["buses"]) - buses)
        if bad:
            raise ConfigError(
                f"fleets.{name}.buses: {bad} are not buses of the feeder (buses {min(buses)}..{max(buses)})"
            )
        for k, route in enumerate(fleet["distributions"]["commute"]["routes"]):
            for end in ("home", "work"):
                if route[end] not in buses:
                    raise ConfigError(
                        f"fleets.{name}.distributions.commute.routes[{k}].{end} = {route[end]} is not a bus of the "
                        f"feeder (buses {min(buses)}..{max(buses)})"
                    )
    if config["plots"]["bus"] not in buses:
        raise ConfigError(
            f"plots.bus = {config['plots']['bus']} is not a bus of the feeder (buses {min(buses)}..{max(buses)})"
        )
    for k, station in enumerate(config["transport"]["stations"]):
        if station["bus"] not in buses:
            raise ConfigError(
                f"transport.stations[{k}].bus = {station['bus']} is not a bus of the feeder (buses "
                f"{min(buses)}..{max(buses)})"
            )
    for name, day in config["days"].items():
        bad = sorted(int(b) for b in day["load"]["bus_shapes"] if int(b) not in buses)
        if bad:
            raise ConfigError(f"days.{name}.load.bus_shapes: {bad} are not buses of the feeder")


def check_planning(
    settings: Settings,
    bus_numbers: Iterable[int] | None,
    where: str,
    error: type[FeederflexError],
    objective: bool = True,
    stations: Iterable[int] | None = None,
) -> None:
    """Planning (001): size ranges, unit counts, SOC windows, candidate buses, stations for moving
    units and (``objective``: a study's scenario, not the single-objective solves of a payoff
    table) a costed objective."""
    plan = settings.planning
    if not plan.enabled:
        return
    if plan.mobile.moving and plan.mobile.max_units:
        if plan.mobile.candidates is not None:
            raise error(
                f"{_prefix(where)}planning.mobile.candidates = {list(plan.mobile.candidates)}: moving units start at "
                "the transport station the model chooses; leave candidates null"
            )
        if stations is not None and not list(stations):
            raise error(f"{_prefix(where)}planning.mobile.moving is true, but transport.stations is empty")
    for kind in ("fixed", "mobile"):
        spec = getattr(plan, kind)
        at = f"{_prefix(where)}planning.{kind}"
        if spec.p_min_mw > spec.p_max_mw:
            raise error(f"{at}: p_min_mw {spec.p_min_mw} is above p_max_mw {spec.p_max_mw}")
        if spec.min_units > spec.max_units:
            raise error(f"{at}: min_units {spec.min_units} is above max_units {spec.max_units}")
        if not spec.soc_min <= spec.soc_init <= spec.soc_max:
            raise error(
                f"{at}: need soc_min <= soc_init <= soc_max, got {spec.soc_min}, {spec.soc_init}, {spec.soc_max}"
            )
        if bus_numbers is not None and spec.candidates is not None:
            buses = set(bus_numbers)
            bad = sorted(set(spec.candidates) - buses)
            if bad:
                raise error(f"{at}.candidates: {bad} are not buses of the feeder (buses {min(buses)}..{max(buses)})")
            if spec.min_units > len(set(spec.candidates)):
                raise error(f"{at}: min_units {spec.min_units} is more than the {len(spec.candidates)} candidates")
    weighed = settings.objective.weights.get("planning_cost", 0.0) or "planning_cost" in settings.objective.bounds
    if objective and not weighed:
        raise error(
            f"{_prefix(where)}planning.enabled is true, but objective.weights.planning_cost is 0 and "
            "planning_cost is not bounded: storage would be free; weigh it (1/planning.days_per_year "
            "makes it a cost per day) and set objective.weights.energy_cost_usd to 0"
        )


def check_planning_days(settings: Settings, config: Mapping, where: str) -> None:
    """Representative days (``planning.days``): defined, distinct, and a scenario they can hold."""
    plan = settings.planning
    if not (plan.enabled and plan.days):
        return
    at = f"{_prefix(where)}planning.days"
    names = [d.day for d in plan.days]
    unknown = sorted(set(names) - set(config["days"]))
    if unknown:
        raise ConfigError(f"{at}: {unknown} are not defined in days (have {sorted(config['days'])})")
    if len(set(names)) != len(names):
        raise ConfigError(f"{at}: {names} names a day twice")
    dates = [config["days"][n]["date"] for n in names]
    if len(set(dates)) != len(dates):
        raise ConfigError(f"{at}: the days {names} share dates {dates}; give each its own date")
    reasons = {
        "mess.units (a truck's day does not restart)": bool(settings.mess.units),
        "planning.mobile.moving": plan.mobile.moving and plan.mobile.max_units > 0,
        "coordinated EV charging (ev_control.mode)": settings.ev_control.mode != "uncontrolled",
        "an operated mode (operation.mode)": settings.operation.mode != "day_ahead",
        "net or file days (source)": any(config["days"][n].get("source", "shapes") != "shapes" for n in names),
    }
    refused = [reason for reason, applies in reasons.items() if applies]
    if refused:
        raise ConfigError(f"{at}: representative days are planned without {', '.join(refused)}")


def check_hosting(config: Mapping, scenarios: Mapping, bus_numbers: Iterable[int] | None) -> None:
    """References of the hosting_capacity section: scenarios, buses and shares."""
    from feederflex.hosting import expand_cases

    section = config["hosting_capacity"]
    for name, case in section["cases"].items():
        where = f"hosting_capacity.cases.{name}"
        if case["scenario"] not in scenarios:
            raise ConfigError(
                f"{where}.scenario = {case['scenario']!r} is not a scenario of the study (have {list(scenarios)})"
            )
        if bus_numbers is not None:
            buses = set(bus_numbers)
            bad = sorted(set(case["buses"]) - buses)
            if bad:
                raise ConfigError(
                    f"{where}.buses: {bad} are not buses of the feeder (buses {min(buses)}..{max(buses)})"
                )
    try:
        expand_cases(section)
    except InputError as err:
        raise ConfigError(str(err)) from None


def check_multiobjective(config: Mapping, scenarios: Mapping) -> None:
    """References and choices of the multiobjective section that the schema cannot check."""
    mo = config["multiobjective"]
    for kind, items in (("fronts", mo["fronts"]), ("compromises", mo["compromises"])):
        for name, item in items.items():
            where = f"multiobjective.{kind}.{name}"
            if item["scenario"] not in scenarios:
                raise ConfigError(
                    f"{where}.scenario = {item['scenario']!r} is not a scenario of the study (have {list(scenarios)})"
                )
            if kind == "fronts":
                if item["optimise"] == item["sweep"]:
                    raise ConfigError(
                        f"{where}: optimise and sweep are both {item['sweep']!r}; a front needs two objectives"
                    )
                points = item["points"]
                if not isinstance(points, int) and len({round(float(p), 4) for p in points}) < 2:
                    raise ConfigError(f"{where}.points = {points}: a front needs at least two distinct points")
            elif item["method"] == "fuzzy":
                if len(set(item["objectives"])) < 2:
                    raise ConfigError(
                        f"{where}.objectives = {item['objectives']}: the fuzzy compromise needs at least two objectives"
                    )
                if item["others"] == "weighted":
                    raise ConfigError(
                        f"{where}.others = weighted: a fuzzy compromise minimises a dimensionless membership "
                        "that cannot be weighed against the scenario's $ terms; use others: none"
                    )
                if item["reference"] != "payoff" and item["reference"] not in scenarios:
                    raise ConfigError(
                        f"{where}.reference = {item['reference']!r}: expected payoff or a scenario of the study "
                        f"(have {list(scenarios)})"
                    )
            elif not any(w != 0 for w in item["weights"].values()):
                raise ConfigError(
                    f"{where}.weights = {item['weights']}: a weighted sum needs at least one non-zero weight"
                )


def check_inputs(data: ScenarioData) -> None:
    """Raise :class:`InputError` naming the key and value if the scenario cannot be built from
    its prepared datasets (the same reference rules as at parse time, against the datasets)."""
    settings = data.settings
    check_unit_buses(settings, data.buses, "", InputError)
    check_backfeed_buses(settings, data.buses, "", InputError, data.root)
    check_planning(settings, data.buses, "", InputError, objective=False)
    inverters: tuple[tuple[str, tuple[PVUnit | FessUnit | MessUnit, ...]], ...] = (
        ("pv", settings.pv),
        ("fess", settings.fess),
        ("mess.units", settings.mess.units),
    )
    for kind, units in inverters:
        for k, unit in enumerate(units):
            if not 0.0 < float(unit.power_factor) <= 1.0:
                raise InputError(f"{kind}[{k}] ({unit.name}).power_factor = {unit.power_factor} is outside (0, 1]")
    load = data.feeder.p_load_mw
    loaded = [int(b) for b in load.bus.values[load.values > 0]]
    check_dr_loads(settings, loaded, str(data.feeder.attrs.get("source", "feeder")), "", InputError)
    units = settings.mess.units
    if units:
        if data.travel is None:
            raise InputError("mess.units are given but no travel dataset (transport.stations) was passed")
        check_mess_stations(units, [int(b) for b in data.travel.station.values], "", InputError)
        if data.travel.sizes["time"] != data.profiles.sizes["time"]:
            raise InputError("travel times and profiles have different numbers of steps")
    if data.ev_p_mw.shape != (data.profiles.sizes["time"], data.feeder.sizes["bus"]):
        raise InputError(
            f"EV load has shape {data.ev_p_mw.shape}, expected (time, bus) = "
            f"({data.profiles.sizes['time']}, {data.feeder.sizes['bus']}): fleet and day steps differ"
        )
