from __future__ import annotations

import json
import math

import numpy as np
import pyomo.environ as pyo
import pytest

from feederflex.solve import Session, SolveStatus, map_status, outcome, relative_gap, snapshot, solve, weakest

SOLVER = {"time_limit_s": 10, "mip_gap": 1e-6, "threads": 1}


@pytest.mark.parametrize(
    ("model_status", "has_point", "expected"),
    [
        ("kOptimal", True, SolveStatus.OPTIMAL),
        ("kTimeLimit", True, SolveStatus.FEASIBLE),
        ("kTimeLimit", False, SolveStatus.TIME_LIMIT),
        ("kIterationLimit", False, SolveStatus.TIME_LIMIT),
        ("kInterrupt", True, SolveStatus.FEASIBLE),
        ("kInfeasible", False, SolveStatus.INFEASIBLE),
        ("kUnboundedOrInfeasible", False, SolveStatus.INFEASIBLE),
        ("kUnbounded", False, SolveStatus.ERROR),
        ("kSolveError", False, SolveStatus.ERROR),
        ("kUnknown", True, SolveStatus.ERROR),
        ("kOptimal", False, SolveStatus.ERROR),
    ],
)
def test_every_highs_model_status_maps_to_one_status(model_status, has_point, expected):
    assert map_status(model_status, has_point) == expected


def test_every_highs_model_status_is_known_to_the_map():
    """A new HiGHS release that adds a model status must be mapped on purpose, not fall to 'error'."""
    import highspy

    known = {
        "kOptimal",
        "kModelEmpty",
        "kInfeasible",
        "kUnboundedOrInfeasible",
        "kTimeLimit",
        "kIterationLimit",
        "kInterrupt",
        "kSolutionLimit",
        "kObjectiveBound",
        "kObjectiveTarget",
        "kMemoryLimit",
        "kUnbounded",
        "kNotset",
        "kLoadError",
        "kModelError",
        "kPresolveError",
        "kSolveError",
        "kPostsolveError",
        "kUnknown",
        "kHighsInterrupt",
    }
    assert set(highspy.HighsModelStatus.__members__) <= known


def test_the_weakest_status_of_a_sequence():
    assert weakest([SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.OPTIMAL]) is SolveStatus.FEASIBLE
    assert weakest([SolveStatus.FEASIBLE, SolveStatus.INFEASIBLE]) is SolveStatus.INFEASIBLE
    assert weakest([]) is SolveStatus.OPTIMAL


def test_only_optimal_feasible_and_rules_have_a_solution():
    assert {s for s in SolveStatus if s.has_solution} == {SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.RULES}
    # reading results does not import the solver stack, so kpis keeps its own copy of the list
    from feederflex.kpis import SCHEDULED as READ
    from feederflex.solve import SCHEDULED

    assert set(READ) == set(SCHEDULED)


def test_gap_definition():
    assert relative_gap(100.0, 99.0) == pytest.approx(0.01)
    assert math.isnan(relative_gap(float("nan"), 1.0))


def _knapsack(n: int) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(n), within=pyo.Binary)
    m.c = pyo.Constraint(expr=sum((7 + (i * 37) % 23) * m.x[i] for i in range(n)) <= 3 * n)
    m.o = pyo.Objective(expr=-sum((5 + (i * 53) % 29) * m.x[i] for i in range(n)))
    return m


def test_a_small_mip_is_solved_to_optimality_with_sizes(tmp_path):
    result = solve(_knapsack(12), SOLVER, tmp_path / "highs.log")
    assert result.status == SolveStatus.OPTIMAL
    assert result.integers == 12 and result.rows == 1 and result.columns == 12
    assert result.mip_gap <= 1e-6
    assert "MIP" in (tmp_path / "highs.log").read_text()


def test_an_infeasible_model_is_reported_infeasible():
    m = _knapsack(3)
    m.force = pyo.Constraint(expr=sum(m.x[i] for i in range(3)) >= 4)
    result = solve(m, SOLVER)
    assert result.status == SolveStatus.INFEASIBLE and math.isnan(result.mip_gap)
    assert math.isnan(pyo.value(m.x[0], exception=False) or math.nan)


def test_a_starting_solution_reaches_highs_in_a_model_with_mutable_parameters():
    """Pyomo re-sends mutable parameters before a solve, and HiGHS drops a start set before a model
    change: the start must survive that (with no time to search, HiGHS returns exactly the start)."""
    rng = np.random.default_rng(3)
    n = 300
    w = rng.uniform(1, 10, n)
    v = w + rng.uniform(0, 2, n)
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(n), within=pyo.Binary)
    m.capacity = pyo.Param(initialize=w.sum() / 3, mutable=True)
    m.cap = pyo.Constraint(expr=sum(w[i] * m.x[i] for i in range(n)) <= m.capacity)
    m.obj = pyo.Objective(expr=-sum(v[i] * m.x[i] for i in range(n)))
    used = 0.0
    for i in np.argsort(-v / w):  # greedy by value density: feasible, not optimal
        take = used + w[i] <= w.sum() / 3
        m.x[int(i)].set_value(int(take))
        used += w[i] * take
    start_objective = pyo.value(m.obj)
    result = solve(m, {"time_limit_s": 0.0, "mip_gap": 0.0, "threads": 1}, start=snapshot(m))
    assert result.status is SolveStatus.FEASIBLE
    assert result.objective == pytest.approx(start_objective, rel=1e-9)


def test_fixed_variables_stay_columns_and_refixing_them_is_honoured():
    """Fixing or freeing a variable on a persistent model moves its column bounds (the MESS search
    frees thousands of trips at a time); HiGHS's row keeps the fixed columns, and every re-solve
    equals a fresh solve of the same fixings."""

    def fresh(fixings):
        m = _knapsack(12)
        for i, value in fixings.items():
            m.x[i].fix(value)
        return solve(m, SOLVER).objective

    m = _knapsack(12)
    session = Session(m, SOLVER)
    for fixings in ({0: 1, 1: 0}, {0: 0, 1: 1}, {}):
        for i in range(12):
            m.x[i].unfix()
        for i, value in fixings.items():
            m.x[i].fix(value)
        result = session.solve("fixings")
        assert result.status is SolveStatus.OPTIMAL
        assert result.objective == pytest.approx(fresh(fixings), rel=1e-9)
        assert all(round(m.x[i].value) == value for i, value in fixings.items())
        assert result.nonzeros == 12  # the fixed columns are still in the row
    assert [s.name for s in session.stages] == ["fixings"] * 3


@pytest.mark.parametrize(("threads", "parallel"), [(1, "choose"), (2, "on")])
def test_a_mip_with_threads_searches_its_tree_in_parallel(threads, parallel):
    """HiGHS searches a MIP's tree with several workers only with ``parallel=on``: the options it
    reports back after the run are the ones the solve used (not a log line, which releases reword)."""
    session = Session(_knapsack(12), dict(SOLVER, threads=threads))
    result = session.solve("mip")
    assert result.status is SolveStatus.OPTIMAL
    assert result.options["threads"] == threads and result.options["parallel"] == parallel
    # the same HiGHS session solving an LP afterwards (integers relaxed at their values) gets the default back
    session.relax_integers()
    lp = session.solve("lp", sync=False)
    assert lp.stages[0].kind == "LP" and lp.options["parallel"] == "choose"
    assert lp.objective == pytest.approx(result.objective, rel=1e-12)


def test_a_fixed_variable_keeps_exactly_the_value_it_was_fixed_at():
    """Fixed variables reach HiGHS as columns with equal bounds; the value read back must not move
    them (the EV repair's shares depend on fixed pool plans to the last digit)."""
    m = _knapsack(12)
    m.y = pyo.Var(range(3), bounds=(0, 10))
    m.link = pyo.Constraint(expr=sum(m.y[j] for j in range(3)) <= 20 + m.x[0])
    values = [1 / 3, 2 / 7, 9.87654321e-3]
    for j, value in enumerate(values):
        m.y[j].fix(value)
    solve(m, SOLVER)
    assert [m.y[j].value for j in range(3)] == values


def test_a_session_records_every_stage_and_the_outcome_sums_them():
    m = _knapsack(12)
    session = Session(m, SOLVER)
    first = session.solve("first")
    m.x[0].fix(1 - round(m.x[0].value))
    second = session.solve("second")
    assert [(s.name, s.kind, s.status) for s in session.stages] == [
        ("first", "MILP", "optimal"),
        ("second", "MILP", "optimal"),
    ]
    assert second.objective >= first.objective - 1e-9  # fixing a decision cannot help a minimisation
    total = outcome(second, session.stages)
    assert total.solve_seconds == pytest.approx(first.solve_seconds + second.solve_seconds)
    assert total.wall_seconds >= total.solve_seconds > 0
    assert total.status is SolveStatus.OPTIMAL and total.mip_gap <= 1e-6
    # decisions fixed from another stage's model: feasible, no gap, and the reason
    kept = outcome(second, session.stages, fixed_from="first")
    assert kept.status is SolveStatus.FEASIBLE and math.isnan(kept.mip_gap) and "first" in kept.gap_note
    assert math.isnan(kept.bound) and kept.stages[-1].bound == pytest.approx(second.bound)
    assert json.loads(kept.attrs()["stages"])[0]["name"] == "first"


def test_a_time_limited_mip_with_a_solution_is_feasible_with_its_gap():
    rng = np.random.default_rng(7)
    n = 400
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(n), within=pyo.Binary)
    w = rng.uniform(1, 10, n)
    m.c = pyo.ConstraintList()
    for _ in range(30):
        a = rng.uniform(1, 10, n)
        m.c.add(sum(a[i] * m.x[i] for i in range(n)) <= a.sum() / 4)
    m.o = pyo.Objective(expr=-sum(w[i] * m.x[i] for i in range(n)))
    for i in range(n):
        m.x[i].set_value(0)
    result = solve(m, {"time_limit_s": 0.0, "mip_gap": 0.0, "threads": 1}, start=snapshot(m))
    assert result.status is SolveStatus.FEASIBLE
    assert result.termination.lower().startswith("time limit")
    # no time for a bound: the gap is unknown (NaN), never 0
    assert not result.mip_gap <= 0.0
    assert result.mip_gap == pytest.approx(relative_gap(result.objective, result.bound), nan_ok=True)


def test_each_run_of_a_session_gets_its_own_time_limit():
    """HiGHS's time limit counts on the session's cumulative run clock: a later run after a long
    first one must still get its whole budget (it used to stop at once, 'time limit reached')."""
    rng = np.random.default_rng(7)
    n = 300
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(n), within=pyo.Binary)
    m.c = pyo.ConstraintList()
    w = rng.uniform(1, 10, n)
    for _ in range(20):
        a = rng.uniform(1, 10, n)
        m.c.add(sum(a[i] * m.x[i] for i in range(n)) <= a.sum() / 4)
    m.o = pyo.Objective(expr=-sum(w[i] * m.x[i] for i in range(n)))
    session = Session(m, {"time_limit_s": 0.5, "mip_gap": 0.0, "threads": 1})
    first = session.solve("long MILP")
    assert first.status is SolveStatus.FEASIBLE  # it used its whole half second
    session.relax_integers()
    lp = session.solve("LP afterwards", sync=False)
    assert lp.status is SolveStatus.OPTIMAL and lp.options["time_limit"] == 0.5


def _changing_model() -> pyo.ConcreteModel:
    """A small MILP with a mutable right-hand side, a mutable coefficient, a ranged row and a
    constraint list that grows: the kinds of change a session sees between runs."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(4), bounds=(0, 10))
    m.y = pyo.Var(within=pyo.Binary)
    m.demand = pyo.Param(initialize=5.0, mutable=True)
    m.weight = pyo.Param(initialize=2.0, mutable=True)
    m.cover = pyo.Constraint(expr=sum(m.x.values()) >= m.demand)
    m.coupled = pyo.Constraint(expr=m.x[0] <= m.weight * m.x[1] + 8 * m.y)
    m.band = pyo.Constraint(expr=pyo.inequality(1.0, m.x[2] + m.x[3], 6.0))
    m.cuts = pyo.ConstraintList()
    m.cost = pyo.Objective(expr=3 * m.x[0] + 2 * m.x[1] + 4 * m.x[2] + 5 * m.x[3] + 1.5 * m.y)
    m.other = pyo.Objective(expr=-m.x[0] - m.x[3], sense=pyo.minimize)
    m.other.deactivate()
    return m


def _fresh_objective(m: pyo.ConcreteModel) -> float:
    """The optimum of the model as it stands, from a session that never saw it before."""
    return Session(m, SOLVER).solve("fresh", refine=False).objective


def test_a_session_follows_every_change_of_its_model_as_a_fresh_hand_over_would():
    """Parameters on the right-hand side and in a coefficient, added and deactivated rows, a swapped
    objective and fixed variables: after each change the kept session solves the same optimum as a
    session handed the changed model from scratch, and a ranged constraint stays one row."""
    m = _changing_model()
    session = Session(m, SOLVER)
    first = session.solve("first", refine=False)
    assert first.rows == 3  # the ranged constraint is one row with both bounds
    assert first.objective == pytest.approx(_fresh_objective(m), abs=1e-9)
    changes = [
        lambda: m.demand.set_value(9.0),  # a right-hand side
        lambda: m.weight.set_value(0.25),  # a coefficient
        lambda: m.cuts.add(m.x[1] <= 2.0),  # a new row inside an existing component
        lambda: m.band.deactivate(),  # a row that leaves the model
        lambda: m.x[2].fix(3.0),  # a fixed variable (stays a column)
        lambda: (m.cost.deactivate(), m.other.activate()),  # another objective
        lambda: (m.band.activate(), m.x[2].unfix()),  # back again
    ]
    for change in changes:
        change()
        kept = session.solve("kept", refine=False)
        assert kept.status is SolveStatus.OPTIMAL
        assert kept.objective == pytest.approx(_fresh_objective(m), abs=1e-9)
        assert kept.columns == first.columns  # nothing was handed over again


def test_the_hand_over_is_part_of_the_first_stage_wall_time():
    """Timings are the sum of every stage: the seconds spent compiling and handing the model over
    belong to the stage that ran after them."""
    m = _changing_model()
    session = Session(m, SOLVER)
    session.sync()
    handed = session._pending
    result = session.solve("first", sync=False, refine=False)
    assert handed > 0
    assert result.wall_seconds >= handed
    assert session._pending == 0.0


def test_row_duals_are_the_price_of_a_binding_row():
    """min 3 x0 + 2 x1 s.t. x0 + x1 >= 5, x1 <= 2: the cover row is worth 3 per unit (x0 sets the
    price), the cap on x1 saves 1 per unit; a row HiGHS does not hold has no dual."""
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(2), bounds=(0, None))
    m.cover = pyo.Constraint(expr=m.x[0] + m.x[1] >= 5)
    m.cap = pyo.Constraint(expr=m.x[1] <= 2)
    m.unused = pyo.Constraint(expr=m.x[0] <= 100)
    m.unused.deactivate()
    m.obj = pyo.Objective(expr=3 * m.x[0] + 2 * m.x[1])
    session = Session(m, SOLVER)
    assert session.solve("lp", refine=False).status is SolveStatus.OPTIMAL
    duals = session.row_duals([m.cover, m.cap, m.unused])
    assert duals[0] == pytest.approx(3.0) and duals[1] == pytest.approx(-1.0)
    assert math.isnan(duals[2])
