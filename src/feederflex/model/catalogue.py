"""The catalogue of objective terms: name, unit, sense and meaning of each (no Pyomo).

The terms themselves are built in :mod:`feederflex.model.objectives`; the catalogue is what the
workflow (the ``{objective}`` wildcard, at parse time) and the multi-objective tables need, so it
imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    name: str
    unit: str
    sense: str  # "min" or "max"
    description: str
    epigraph: bool = False  # needs auxiliary variables, built only when used


CATALOGUE: dict[str, Term] = {
    t.name: t
    for t in (
        Term("pv_used_mwh", "MWh", "max", "PV energy used (000 eq. 21)"),
        Term("pv_curtailed_mwh", "MWh", "min", "PV energy available but not used (003 eq. 10)"),
        Term(
            "energy_cost_usd",
            "$",
            "min",
            "energy bought at the substation minus energy sold, at time-of-use prices (003 eq. 13)",
        ),
        Term(
            "storage_cost_usd",
            "$",
            "min",
            "storage degradation (fixed and mobile): cost per MWh of charge plus discharge throughput (000 eq. 6)",
        ),
        Term(
            "mess_transfer_cost_usd",
            "$",
            "min",
            "MESS trips: cost per move, per km and per hour on the road (000 eq. 7, 002 eq. 33f)",
        ),
        Term("mess_cost_usd", "$", "min", "MESS degradation plus trips: f2 of 000 eq. 5-7"),
        Term(
            "voltage_violation_pu_h",
            "pu h",
            "min",
            "sum over buses and steps of the voltage slacks times the step length",
        ),
        Term(
            "branch_overload_mva_h",
            "MVA h",
            "min",
            "sum over rated branches and steps of the flow beyond the rating (overload slack) times the step length",
        ),
        Term(
            "voltage_offset",
            "1",
            "min",
            "001 eq. 20-21: sum over steps and buses of (deviation outside the band / band width)^2",
            True,
        ),
        Term(
            "load_variance_mw2", "MW^2", "min", "003 eq. 11: variance over the day of the substation's net load", True
        ),
        Term(
            "power_deviation_mw2",
            "MW^2",
            "min",
            "003 eq. 12: sum of squared step-to-step changes of the substation's net load",
            True,
        ),
        Term("peak_import_mw", "MW", "min", "largest import at the substation", True),
        Term(
            "dr_cost_usd",
            "$",
            "min",
            "demand response compensation: curtailed and shifted MWh at their prices (002 eq. 33c, linear)",
        ),
        Term("dr_curtailed_mwh", "MWh", "min", "load curtailed by demand response"),
        Term(
            "inverter_q_cost_usd",
            "$",
            "min",
            "reactive energy of the PV and storage inverters at inverters.q_cost_usd_per_mvarh",
        ),
        Term(
            "expected_not_served_mwh",
            "MWh",
            "min",
            "expected PV and DR power not served under forecast errors (002 eq. 24, 29), outer "
            "approximation; 0 unless risk.enabled",
        ),
        Term(
            "expected_curtailed_mwh",
            "MWh",
            "min",
            "expected PV and DR curtailment under forecast errors (002 eq. 27, 31); 0 unless risk.enabled",
        ),
        Term(
            "planning_cost",
            "currency/yr",
            "min",
            "001 eq. 13: w1 investment annuity + w2 O&M + w3 energy purchase x planning.days_per_year + "
            "w4 mobile rental, per year in planning.currency; 0 without planning",
        ),
        Term("storage_investment_per_yr", "currency/yr", "min", "f1 of 001 eq. 14: annualised battery investment"),
        Term("storage_om_per_yr", "currency/yr", "min", "f2 of 001 eq. 15: battery operation and maintenance"),
        Term("mobile_rental_per_yr", "currency/yr", "min", "f4 of 001 eq. 17: rent of the mobile units built"),
        Term(
            "risk_cost_usd",
            "$",
            "min",
            "reserve cost of expected power not served minus the value of expected curtailment (002 "
            "eq. 33d-e); 0 unless risk.enabled",
        ),
        Term(
            "ev_discharge_payment",
            "currency",
            "min",
            "paid to EV owners for the energy their cars discharge, at regional.ev_discharge_price_per_mwh (004)",
        ),
    )
}
SIGN = {"min": 1.0, "max": -1.0}
