"""Solve a scenario with HiGHS through Pyomo and record how it went.

Solver outcomes are mapped once, here, from Pyomo's termination condition to :class:`SolveStatus`.
Nothing infeasible, timed out or failed is ever written as optimal: its variables are NaN and the
status says what happened.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

log = logging.getLogger(__name__)


class SolveStatus(str, enum.Enum):
    """What a solve produced."""

    OPTIMAL = "optimal"  # proven within the configured MIP gap
    FEASIBLE = "feasible"  # a solution, but the gap was not closed (time limit, interrupt)
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"  # time limit reached without any solution
    ERROR = "error"

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


_INFEASIBLE = {
    TerminationCondition.provenInfeasible,
    TerminationCondition.locallyInfeasible,
    TerminationCondition.infeasibleOrUnbounded,
}


def map_status(termination: TerminationCondition, solution: SolutionStatus) -> SolveStatus:
    """Map Pyomo's termination condition and solution status onto :class:`SolveStatus`."""
    if termination == TerminationCondition.convergenceCriteriaSatisfied and solution == SolutionStatus.optimal:
        return SolveStatus.OPTIMAL
    if termination in _INFEASIBLE:
        return SolveStatus.INFEASIBLE
    has_point = solution in (SolutionStatus.feasible, SolutionStatus.optimal)
    if termination in (TerminationCondition.maxTimeLimit, TerminationCondition.iterationLimit,
                       TerminationCondition.interrupted, TerminationCondition.objectiveLimit):
        return SolveStatus.FEASIBLE if has_point else SolveStatus.TIME_LIMIT
    return SolveStatus.ERROR


@dataclass
class SolveResult:
    """How a solve went; every field goes into the solution's attributes."""

    status: SolveStatus
    termination: str
    objective: float = math.nan
    bound: float = math.nan
    mip_gap: float = math.nan
    solve_seconds: float = math.nan
    rows: int = 0
    columns: int = 0
    integers: int = 0
    nonzeros: int = 0
    solver: str = "highs"
    solver_version: str = ""
    refinements: int = 0  # re-solves that added tangents to squared objective terms
    options: dict = field(default_factory=dict)  # HiGHS's option values as read back after the run
    diagnostics: list[str] = field(default_factory=list)

    def attrs(self) -> dict:
        out = asdict(self)
        out["status"] = self.status.value
        out["diagnostics"] = "; ".join(self.diagnostics)
        return out


def relative_gap(objective: float, bound: float) -> float:
    """|objective - bound| / max(|objective|, 1e-9), HiGHS's definition; NaN when either is missing."""
    if objective is None or bound is None or not (math.isfinite(objective) and math.isfinite(bound)):
        return math.nan
    return abs(objective - bound) / max(abs(objective), 1e-9)


def highs() -> object:
    """A persistent HiGHS interface: re-solving the same model only sends what changed.

    Fixed variables stay HiGHS columns with equal bounds (``treat_fixed_vars_as_params=False``), so
    fixing or freeing one (the MESS search frees thousands of trips at a time) changes two bounds;
    with Pyomo's default every row the variable appears in is removed and added again, which made
    a 120 s solve call of the 96-step tong2021 search take 182 s (121 s now; benchmarks/README.md)."""
    return SolverFactory("highs", treat_fixed_vars_as_params=False)


# Pyomo's solve() first re-sends every mutable parameter to HiGHS, and HiGHS drops a solution set
# before any model change: after _set_start has brought the model up to date, solve without updates.
NO_UPDATES = {key: False for key in (
    "check_for_new_or_removed_constraints", "check_for_new_or_removed_vars", "check_for_new_or_removed_params",
    "check_for_new_objective", "update_constraints", "update_vars", "update_parameters", "update_named_expressions",
    "update_objective")}


def _set_start(opt, model: pyo.ConcreteModel, start: dict) -> None:
    """Hand HiGHS a starting solution (values by variable) for the model's next solve.

    The model is brought up to date first; the solve that follows must pass ``NO_UPDATES``, or the
    start is discarded (HiGHS invalidates a set solution on any model change)."""
    import highspy

    if opt._model is not model:
        opt.set_instance(model)
    else:
        opt.update()
    column = opt._pyomo_var_to_solver_var_map
    values = [0.0] * opt._solver_model.getNumCol()
    for var, value in start.items():
        if id(var) in column and value is not None:
            values[column[id(var)]] = float(value)
    solution = highspy.HighsSolution()
    solution.col_value = values
    solution.value_valid = True
    opt._solver_model.setSolution(solution)


# the options whose values HiGHS reports back with every result: what the solve really ran with
_REPORTED_OPTIONS = ("threads", "parallel", "mip_rel_gap", "time_limit", "random_seed", "presolve")


def _options_in_force(backend) -> dict:
    """HiGHS's current values of :data:`_REPORTED_OPTIONS` (``getOptionValue`` gives (status, value))."""
    found = {}
    for name in _REPORTED_OPTIONS:
        value = backend.getOptionValue(name)
        found[name] = value[1] if isinstance(value, tuple) else value
    return found


_scheduler_threads: list[int] = []  # the thread count HiGHS's process-wide scheduler was started with


def use_threads(threads: int) -> None:
    """HiGHS starts one task scheduler per process and refuses a solve with another thread count
    ("global scheduler has already been initialized"): restart it when the count changes."""
    import highspy

    if _scheduler_threads and _scheduler_threads[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _scheduler_threads[:] = [threads]


def _has_free_integers(model: pyo.ConcreteModel) -> bool:
    return any(var.is_integer() and not var.fixed for var in model.component_data_objects(pyo.Var, active=True))


def _load(res, model: pyo.ConcreteModel) -> None:
    """Load the solution into the free variables only: fixed variables are HiGHS columns with equal
    bounds (see :func:`highs`), and HiGHS may return them a few 1e-9 off, which must not move them
    (a pooled EV plan fixed for the AC correction is shared out car by car afterwards)."""
    fixed = [(var, var.value) for var in model.component_data_objects(pyo.Var) if var.fixed]
    res.solution_loader.load_vars()
    for var, value in fixed:
        var.set_value(value, skip_validation=True)


def snapshot(model: pyo.ConcreteModel) -> ComponentMap:
    """Current value of every variable (a starting solution for :func:`solve`, or to restore)."""
    return ComponentMap((var, var.value) for var in model.component_data_objects(pyo.Var))


def _refine_squares(model, opt, solver: dict, options: dict, result: SolveResult, started: float) -> SolveResult:
    """Outer approximation of squared objective terms: while the solution sits where the tangents
    are loose, add tangents there and re-solve (from the solution), up to ``refine_rounds`` times."""
    from feederflex.model.objectives import refine

    terms = getattr(model, "terms", None)
    if terms is None or not getattr(terms, "_sq", None):
        return result
    rounds = terms._refine[1]
    for _ in range(rounds):
        if not refine(model):
            break
        _set_start(opt, model, snapshot(model))
        res = opt.solve(model, time_limit=float(solver["time_limit_s"]), solver_options=options, load_solutions=False,
                        raise_exception_on_nonoptimal_result=False)
        status = map_status(res.termination_condition, res.solution_status)
        if not status.has_solution:
            result.diagnostics.append(f"tangent refinement stopped: HiGHS {res.termination_condition.name}")
            break
        _load(res, model)
        objective = float(res.incumbent_objective)
        bound = float(res.objective_bound) if res.objective_bound is not None else math.nan
        result.status, result.termination, result.objective, result.bound = status, res.termination_condition.name, objective, bound
        result.mip_gap = relative_gap(objective, bound)
        result.rows = int(opt._solver_model.getNumRow())
        result.refinements += 1
    result.solve_seconds = time.perf_counter() - started
    return result


def solve(
    model: pyo.ConcreteModel,
    solver: dict,
    log_file: str | Path | None = None,
    *,
    opt: object | None = None,
    start: dict | None = None,
) -> SolveResult:
    """Solve ``model`` with HiGHS (``time_limit_s``, ``mip_gap``, ``threads`` from ``solver``).

    The solution is loaded into the model only when there is one; HiGHS's own log goes to
    ``log_file``. Pass ``opt`` (from :func:`highs`) to re-solve a modified model incrementally and
    ``start`` (variable -> value) to give HiGHS a starting solution.
    """
    opt = opt if opt is not None else highs()
    if not opt.available():
        return SolveResult(SolveStatus.ERROR, "solver not available", diagnostics=["highspy is not installed"])
    options = {"mip_rel_gap": float(solver["mip_gap"]), "threads": int(solver["threads"]), "output_flag": True,
               "log_to_console": False, "random_seed": 0}
    use_threads(int(solver["threads"]))
    # HiGHS searches the branch-and-bound tree in parallel only when told; a persistent HiGHS keeps
    # options between solves, so LPs (e.g. re-solves with the integers fixed) get the default back
    options["parallel"] = "on" if int(solver["threads"]) > 1 and _has_free_integers(model) else "choose"
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        options["log_file"] = str(log_file)
    started = time.perf_counter()
    try:
        if start:
            _set_start(opt, model, start)
        res = opt.solve(
            model,
            time_limit=float(solver["time_limit_s"]),
            solver_options=options,
            load_solutions=False,
            raise_exception_on_nonoptimal_result=False,
            **({"auto_updates": NO_UPDATES} if start else {}),
        )
    except Exception as err:  # a failure inside the solver is recorded, not hidden
        log.exception("HiGHS failed")
        return SolveResult(SolveStatus.ERROR, "error", solve_seconds=time.perf_counter() - started,
                           diagnostics=[f"{type(err).__name__}: {err}"])
    elapsed = time.perf_counter() - started
    status = map_status(res.termination_condition, res.solution_status)
    backend = opt._solver_model
    lp = backend.getLp()
    integrality = list(lp.integrality_) if len(lp.integrality_) else []
    objective = res.incumbent_objective if res.incumbent_objective is not None else math.nan
    bound = res.objective_bound if res.objective_bound is not None else math.nan
    result = SolveResult(
        status=status,
        termination=res.termination_condition.name,
        objective=float(objective),
        bound=float(bound),
        mip_gap=relative_gap(objective, bound) if status.has_solution else math.nan,
        solve_seconds=elapsed,
        rows=int(backend.getNumRow()),
        columns=int(backend.getNumCol()),
        integers=sum(1 for v in integrality if int(v) != 0),
        nonzeros=int(backend.getNumNz()),
        solver_version=".".join(map(str, opt.version())),
        options=_options_in_force(backend),
    )
    if status.has_solution:
        _load(res, model)
        result = _refine_squares(model, opt, solver, options, result, started)
    else:
        result.diagnostics.append(f"HiGHS stopped with {res.termination_condition.name} and no usable solution")
    return result
