from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
import pytest
from pyomo.contrib.solver.common.results import SolutionStatus as S
from pyomo.contrib.solver.common.results import TerminationCondition as T

from feederflex.solve import SolveStatus, highs, map_status, relative_gap, snapshot, solve

SOLVER = {"time_limit_s": 10, "mip_gap": 1e-6, "threads": 1}


@pytest.mark.parametrize(
    ("termination", "solution", "expected"),
    [
        (T.convergenceCriteriaSatisfied, S.optimal, SolveStatus.OPTIMAL),
        (T.maxTimeLimit, S.feasible, SolveStatus.FEASIBLE),
        (T.maxTimeLimit, S.noSolution, SolveStatus.TIME_LIMIT),
        (T.iterationLimit, S.noSolution, SolveStatus.TIME_LIMIT),
        (T.provenInfeasible, S.noSolution, SolveStatus.INFEASIBLE),
        (T.infeasibleOrUnbounded, S.noSolution, SolveStatus.INFEASIBLE),
        (T.unbounded, S.noSolution, SolveStatus.ERROR),
        (T.error, S.noSolution, SolveStatus.ERROR),
        (T.unknown, S.feasible, SolveStatus.ERROR),
    ],
)
def test_every_termination_maps_to_one_status(termination, solution, expected):
    assert map_status(termination, solution) == expected


def test_only_optimal_and_feasible_have_a_solution():
    assert {s for s in SolveStatus if s.has_solution} == {SolveStatus.OPTIMAL, SolveStatus.FEASIBLE}


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
    opt = highs()
    for fixings in ({0: 1, 1: 0}, {0: 0, 1: 1}, {}):
        for i in range(12):
            m.x[i].unfix()
        for i, value in fixings.items():
            m.x[i].fix(value)
        result = solve(m, SOLVER, opt=opt)
        assert result.status is SolveStatus.OPTIMAL
        assert result.objective == pytest.approx(fresh(fixings), rel=1e-9)
        assert all(round(m.x[i].value) == value for i, value in fixings.items())
        assert opt._solver_model.getNumNz() == 12  # the fixed columns are still in the row


@pytest.mark.parametrize(("threads", "parallel"), [(1, "choose"), (2, "on")])
def test_a_mip_with_threads_searches_its_tree_in_parallel(threads, parallel):
    """HiGHS searches a MIP's tree with several workers only with ``parallel=on``: the options it
    reports back after the run are the ones the solve used (not a log line, which releases reword)."""
    opt = highs()
    result = solve(_knapsack(12), dict(SOLVER, threads=threads), opt=opt)
    assert result.status is SolveStatus.OPTIMAL
    assert result.options["threads"] == threads and result.options["parallel"] == parallel
    # the same persistent HiGHS solving an LP afterwards gets the default back
    m = _knapsack(12)
    for var in m.x.values():
        var.domain = pyo.UnitInterval
    lp = solve(m, dict(SOLVER, threads=threads), opt=opt)
    assert lp.integers == 0 and lp.options["parallel"] == "choose"


def test_a_fixed_variable_keeps_exactly_the_value_it_was_fixed_at():
    """Fixed variables reach HiGHS as columns with equal bounds; the value read back must not move
    them (the EV repair's shares depend on fixed pool plans to the last digit)."""
    m = _knapsack(12)
    m.y = pyo.Var(range(3), bounds=(0, 10))
    m.link = pyo.Constraint(expr=sum(m.y[j] for j in range(3)) <= 20 + m.x[0])
    values = [1 / 3, 2 / 7, 9.87654321e-3]
    for j, value in enumerate(values):
        m.y[j].fix(value)
    solve(m, SOLVER, opt=highs())
    assert [m.y[j].value for j in range(3)] == values
