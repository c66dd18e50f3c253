"""The one HiGHS session of a model, and how every solve is recorded.

:class:`Session` owns the highspy model of one Pyomo model for its whole life: the hand-over (the
model compiled to matrices once, :mod:`feederflex.matrices`, then only what changed), fixing and
releasing variables as column bounds, row-bound changes, starting solutions, the run, the status
and the timing. Every scenario solve, MESS search, AC correction, tangent refinement,
multi-objective stage and rolling re-solve goes through it; no other module touches Pyomo's or highspy's internals.

Outcomes are mapped once, from HiGHS's model status, to :class:`SolveStatus`. Each run is a
:class:`Stage` (name, LP or MILP, status, objective, bound, gap, HiGHS seconds, wall seconds); a
solution carries the list of its stages, and its top-level status, gap and seconds are derived from
that list by one rule, :func:`outcome`:

- ``optimal`` only when the stage that produced the written schedule solved that schedule's own
  model to ``mip_gap`` with a valid bound. A schedule whose decisions were fixed from another model
  (the AC correction's re-solves, a rolling day that keeps the plan's integers) is ``feasible``: its
  ``bound`` and ``mip_gap`` are NaN and ``gap_note`` says why (the fixed model's own bound stays in
  its stage), never a bound or gap copied from another model;
- ``solve_seconds`` is the sum of HiGHS's seconds over all stages, ``wall_seconds`` the sum of the
  stages' wall time (hand-over, starts, loading the solution included).

Nothing infeasible, timed out or failed is ever written as optimal: its variables are NaN and the
status says what happened.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Set
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from feederflex.matrices import (
    Compiled,
    active_constraints,
    active_objective,
    column_bounds,
    column_major,
    compile_model,
    parameters_changed,
    row_major,
)
from feederflex.settings import Solver

log = logging.getLogger(__name__)


class SolveStatus(enum.StrEnum):
    """What a solve produced."""

    OPTIMAL = "optimal"  # proven within the configured MIP gap, for the model that produced the schedule
    FEASIBLE = "feasible"  # a solution, but no proof of the gap for its model (time limit, fixed decisions)
    RULES = "rules"  # a rule simulation (004): a schedule, and no claim of optimality at all
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"  # time limit reached without any solution
    ERROR = "error"

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE, SolveStatus.RULES)


SCHEDULED = tuple(s.value for s in SolveStatus if s.has_solution)  # statuses of a written schedule


# weakest first: the status of a sequence of solves (a rolling day) is its weakest member's
STRENGTH = (
    SolveStatus.ERROR,
    SolveStatus.INFEASIBLE,
    SolveStatus.TIME_LIMIT,
    SolveStatus.RULES,
    SolveStatus.FEASIBLE,
    SolveStatus.OPTIMAL,
)

_STOPPED = {
    "kTimeLimit",
    "kIterationLimit",
    "kInterrupt",
    "kSolutionLimit",
    "kObjectiveBound",
    "kObjectiveTarget",
    "kMemoryLimit",
}


def map_status(model_status: str, has_point: bool) -> SolveStatus:
    """Map HiGHS's model status (``HighsModelStatus`` name, e.g. ``kOptimal``) and whether it holds a
    primal feasible point onto :class:`SolveStatus`. The only place a solver outcome is interpreted."""
    if model_status in ("kOptimal", "kModelEmpty") and has_point:
        return SolveStatus.OPTIMAL
    if model_status in ("kInfeasible", "kUnboundedOrInfeasible"):
        return SolveStatus.INFEASIBLE
    if model_status in _STOPPED:
        return SolveStatus.FEASIBLE if has_point else SolveStatus.TIME_LIMIT
    return SolveStatus.ERROR


def weakest(statuses: Iterable[SolveStatus]) -> SolveStatus:
    """The weakest of ``statuses`` (optimal > feasible > time_limit > infeasible > error)."""
    return min(statuses, key=STRENGTH.index, default=SolveStatus.OPTIMAL)


def relative_gap(objective: float, bound: float) -> float:
    """|objective - bound| / max(|objective|, 1e-9), HiGHS's definition; NaN when either is missing."""
    if objective is None or bound is None or not (math.isfinite(objective) and math.isfinite(bound)):
        return math.nan
    return abs(objective - bound) / max(abs(objective), 1e-9)


@dataclass
class Stage:
    """One run of HiGHS: what it solved and how it ended."""

    name: str
    kind: str  # "LP" or "MILP" (free integer columns at the run)
    status: str
    objective: float
    bound: float
    gap: float
    highs_seconds: float
    wall_seconds: float
    time_limit_s: float = math.nan  # what this run was given (tangent rounds share one budget)


@dataclass
class SolveResult:
    """How a solve went; every field goes into the solution's attributes (``solver_*``)."""

    status: SolveStatus
    termination: str
    objective: float = math.nan
    bound: float = math.nan
    mip_gap: float = math.nan
    solve_seconds: float = math.nan  # HiGHS's own seconds, summed over ``stages``
    wall_seconds: float = math.nan  # wall time of the stages, summed
    rows: int = 0
    columns: int = 0
    integers: int = 0
    nonzeros: int = 0
    solver: str = "highs"
    solver_version: str = ""
    refinements: int = 0  # re-solves that added tangents to squared objective terms
    options: dict = field(default_factory=dict)  # HiGHS's option values as read back after the run
    stages: list[Stage] = field(default_factory=list)
    gap_note: str = ""  # why mip_gap is empty when there is a schedule
    diagnostics: list[str] = field(default_factory=list)

    def attrs(self) -> dict:
        out = asdict(self)
        out["status"] = self.status.value
        out["diagnostics"] = "; ".join(self.diagnostics)
        # JSON already here, so that a dataset in memory and the same dataset read back agree
        out["stages"] = json.dumps(out["stages"])
        out["options"] = json.dumps(out["options"], sort_keys=True)
        return out


def outcome(final: SolveResult, stages: list[Stage], fixed_from: str | None = None) -> SolveResult:
    """The result of a whole solve: ``final`` (the stage whose schedule is written) with every stage
    listed, seconds summed, and the status rule of this module applied.

    ``fixed_from`` names the stage whose decisions the final model kept fixed (None: the final
    model is the schedule's own). Then an ``optimal`` final stage proves only the fixed model's
    optimum: the result is ``feasible`` with an empty gap and the reason in ``gap_note``."""
    out = replace(final, stages=list(stages), diagnostics=list(final.diagnostics))
    out.solve_seconds = float(sum(s.highs_seconds for s in stages))
    out.wall_seconds = float(sum(s.wall_seconds for s in stages))
    if fixed_from is not None and out.status.has_solution:
        out.status = SolveStatus.FEASIBLE
        out.mip_gap = math.nan
        out.bound = math.nan  # the last solve's bound is that of the fixed model (kept in its stage)
        out.gap_note = (
            f"decisions fixed from the {fixed_from} stage: the last solve's bound holds only for those "
            "decisions, and no bound of this schedule's own model is known"
        )
    return out


def snapshot(model: pyo.ConcreteModel) -> ComponentMap:
    """Current value of every variable (a starting solution for :meth:`Session.solve`, or to restore)."""
    return ComponentMap((var, var.value) for var in model.component_data_objects(pyo.Var))


def restore(values: ComponentMap) -> None:
    """Put the free variables back to ``values`` (a :func:`snapshot`)."""
    for var, value in values.items():
        if not var.fixed:
            var.set_value(value, skip_validation=True)


def state(m: pyo.ConcreteModel) -> ComponentMap:
    """Value and fixed flag of every variable (to put back with :func:`put_state`)."""
    return ComponentMap((var, (var.value, var.fixed)) for var in m.component_data_objects(pyo.Var))


def put_state(values: ComponentMap) -> None:
    """Every variable back to a value and fixed flag of :func:`state`."""
    for var, (value, fixed) in values.items():
        var.set_value(value, skip_validation=True)
        if fixed:
            var.fix()
        else:
            var.unfix()


_scheduler_threads: list[int] = []  # the thread count HiGHS's process-wide scheduler was started with


def _use_threads(threads: int) -> None:
    """HiGHS starts one task scheduler per process and refuses a solve with another thread count
    ("global scheduler has already been initialized"): restart it when the count changes."""
    import highspy

    if _scheduler_threads and _scheduler_threads[0] != threads:
        highspy.Highs.resetGlobalScheduler(True)
    _scheduler_threads[:] = [threads]


# the options whose values HiGHS reports back with every result: what the solve really ran with
_REPORTED_OPTIONS = ("threads", "parallel", "mip_rel_gap", "time_limit", "random_seed", "presolve")


class Session:
    """The HiGHS copy of one Pyomo model, for the model's whole life.

    ``solve`` brings HiGHS up to date with the Pyomo model and runs it. The first call hands the
    model over as matrices (:func:`feederflex.matrices.compile_model`, one ``passModel``); later
    calls compare instead of re-walking: the columns' bounds, fixed values and integrality are read
    from Pyomo every time, and only when a mutable parameter, the set of active constraints or the
    active objective changed is the model compiled again and the difference sent (row bounds,
    coefficients, costs, new rows; a deactivated constraint's row is freed). A constraint's
    expression replaced in place is not detected: add a new constraint instead.

    The direct edits (``fix``, ``release``, ``relax_integers``, ``update_rows``, ``restore_columns``)
    change Pyomo and HiGHS together and are followed by ``solve(..., sync=False)``, which runs HiGHS
    as it is: a rolling re-solve changes a few bounds, and comparing the whole model would cost more
    than the solve.

    Fixed variables stay HiGHS columns with equal bounds, so fixing or freeing one changes two
    bounds instead of removing and re-adding every row it is in."""

    def __init__(self, model: pyo.ConcreteModel, solver: Solver | Mapping, log_file: str | Path | None = None) -> None:
        self.model = model
        self.solver = solver if isinstance(solver, Solver) else Solver(**solver)
        self.log_file = None if log_file is None else str(log_file)
        self._highs: Any = None
        self._held: Compiled | None = None  # the last compile; its rows and columns are HiGHS's first ones
        self._cols: dict[int, int] = {}  # id(variable) -> HiGHS column
        self._rows: dict[int, int] = {}  # id(constraint) -> HiGHS row, for the active constraints HiGHS holds
        self._row_cons: list[Any] = []  # the constraint of each HiGHS row (a freed row keeps its entry)
        self._columns: list[Any] = []  # the variable of each HiGHS column
        self._lower = np.zeros(0)  # column bounds as HiGHS holds them
        self._upper = np.zeros(0)
        self._integer = np.zeros(0, dtype=bool)  # integrality as HiGHS holds it
        self._relaxed: set[int] = set()  # integer columns made continuous by relax_integers
        self._pending = 0.0  # hand-over seconds not yet booked to a stage
        self.stages: list[Stage] = []

    # -- hand-over ------------------------------------------------------------------------------
    @property
    def available(self) -> bool:
        import importlib.util

        return importlib.util.find_spec("highspy") is not None

    def sync(self) -> None:
        """Bring HiGHS up to date with the Pyomo model (the first call hands it over). The seconds
        go to the next stage's wall time."""
        from pyomo.common.gc_manager import PauseGC

        began = time.perf_counter()
        with PauseGC():
            self._sync()
        self._pending += time.perf_counter() - began

    def _sync(self) -> None:
        if self._highs is None:
            self._hand_over()
        else:
            held = self._held
            assert held is not None
            if (
                active_objective(self.model) is not held.objective
                or parameters_changed(held.parameters)
                or active_constraints(self.model) != held.constraints
            ):
                self._update_rows_and_costs(compile_model(self.model))
            self._sync_columns()

    def _hand_over(self) -> None:
        import highspy

        compiled = compile_model(self.model)
        start, index, value = column_major(*compiled.entries, len(compiled.columns))
        lower, upper, integer = column_bounds(compiled.columns)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        lp = highspy.HighsLp()
        lp.num_col_ = len(compiled.columns)
        lp.num_row_ = len(compiled.rows)
        lp.col_cost_ = compiled.cost
        lp.col_lower_ = lower
        lp.col_upper_ = upper
        lp.row_lower_ = compiled.row_lower
        lp.row_upper_ = compiled.row_upper
        lp.offset_ = compiled.offset
        lp.sense_ = highspy.ObjSense.kMaximize if compiled.maximize else highspy.ObjSense.kMinimize
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.num_col_ = lp.num_col_
        lp.a_matrix_.num_row_ = lp.num_row_
        lp.a_matrix_.start_ = start
        lp.a_matrix_.index_ = index
        lp.a_matrix_.value_ = value
        if integer.any():
            lp.integrality_ = [
                highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in integer
            ]
        h.passModel(lp)
        self._highs = h
        self._held = compiled
        self._columns = list(compiled.columns)
        self._cols = {id(var): k for k, var in enumerate(self._columns)}
        self._row_cons = list(compiled.rows)
        self._rows = {id(con): k for k, con in enumerate(self._row_cons)}
        self._lower, self._upper, self._integer = lower, upper, integer

    def _update_rows_and_costs(self, new: Compiled) -> None:
        """Send what changed between the model HiGHS holds and ``new``, a compile of the current model."""
        import highspy

        h, held = self._h, self._held
        assert held is not None
        if any(id(var) not in self._cols for var in new.columns):
            self._highs = None  # a variable HiGHS does not hold: hand the whole model over again
            self._relaxed.clear()
            self._hand_over()
            return
        n_col = len(self._columns)
        to_held = np.fromiter((self._cols[id(var)] for var in new.columns), dtype=np.int64, count=len(new.columns))
        new_rows, new_cols, new_values = new.entries
        new_cols = to_held[new_cols]
        cost = np.zeros(n_col)
        cost[to_held] = new.cost
        changed = np.flatnonzero(cost != held.cost)
        if changed.size:
            h.changeColsCost(int(changed.size), changed.astype(np.int32), cost[changed])
        if new.offset != held.offset:
            h.changeObjectiveOffset(new.offset)
        if new.maximize != held.maximize:
            h.changeObjectiveSense(highspy.ObjSense.kMaximize if new.maximize else highspy.ObjSense.kMinimize)
        target = np.fromiter((self._rows.get(id(con), -1) for con in new.rows), dtype=np.int64, count=len(new.rows))
        kept = np.flatnonzero(target >= 0)
        if kept.size:  # rows HiGHS holds: their bounds and coefficients
            lp = h.getLp()
            rows = target[kept]
            moved = (new.row_lower[kept] != np.asarray(lp.row_lower_)[rows]) | (
                new.row_upper[kept] != np.asarray(lp.row_upper_)[rows]
            )
            for k in np.flatnonzero(moved):
                h.changeRowBounds(int(rows[k]), float(new.row_lower[kept[k]]), float(new.row_upper[kept[k]]))
            self._change_coefficients(lp, target, (new_rows, new_cols, new_values))
        active = {id(con) for con in new.rows}
        for cid in [cid for cid in self._rows if cid not in active]:  # no longer active: the row is freed
            h.changeRowBounds(self._rows.pop(cid), -math.inf, math.inf)
        added = np.flatnonzero(target < 0)
        if added.size:
            number = np.full(len(new.rows), -1)
            number[added] = np.arange(added.size)
            mine = number[new_rows] >= 0
            start, index, value = row_major(number[new_rows[mine]], new_cols[mine], new_values[mine], int(added.size))
            h.addRows(int(added.size), new.row_lower[added], new.row_upper[added], int(value.size), start, index, value)
            for k in added:
                self._rows[id(new.rows[k])] = len(self._row_cons)
                self._row_cons.append(new.rows[k])
        self._held = replace(new, columns=self._columns, cost=cost)

    def _change_coefficients(self, lp: Any, target: np.ndarray, entries: tuple) -> None:
        """Coefficients of the rows HiGHS holds (``target``: HiGHS row of each new row, -1 if new)
        that differ from ``entries`` (new row, HiGHS column, value) are set to the new value."""
        n_col = int(lp.num_col_)
        rows, cols, values = entries
        mine = target[rows] >= 0
        new_keys = target[rows[mine]] * n_col + cols[mine]
        new_values = values[mine]
        start = np.asarray(lp.a_matrix_.start_)
        old_rows = np.asarray(lp.a_matrix_.index_, dtype=np.int64)
        old_cols = np.repeat(np.arange(n_col), np.diff(start))
        checked = np.zeros(int(lp.num_row_), dtype=bool)
        checked[target[target >= 0]] = True
        old = checked[old_rows]
        old_keys = old_rows[old] * n_col + old_cols[old]
        old_values = np.asarray(lp.a_matrix_.value_)[old]
        keys = np.union1d(new_keys, old_keys)
        now = np.zeros(keys.size)
        now[np.searchsorted(keys, new_keys)] = new_values
        before = np.zeros(keys.size)
        before[np.searchsorted(keys, old_keys)] = old_values
        for key in np.flatnonzero(now != before):
            self._h.changeCoeff(int(keys[key] // n_col), int(keys[key] % n_col), float(now[key]))

    def _sync_columns(self) -> None:
        """Column bounds and integrality from Pyomo, sent where they differ from what HiGHS holds."""
        lower, upper, integer = column_bounds(self._columns)
        for k in self._relaxed:  # relax_integers' columns stay continuous until restore_columns
            integer[self._cols[k]] = False
        moved = np.flatnonzero((lower != self._lower) | (upper != self._upper))
        if moved.size:
            self._h.changeColsBounds(int(moved.size), moved, lower[moved], upper[moved])
        retyped = np.flatnonzero(integer != self._integer)
        if retyped.size:
            self._h.changeColsIntegrality(int(retyped.size), retyped, integer[retyped].astype(np.uint8))
        self._lower, self._upper, self._integer = lower, upper, integer

    def _set_bounds(self, col: int, lower: float, upper: float) -> None:
        self._h.changeColBounds(col, lower, upper)
        self._lower[col], self._upper[col] = lower, upper

    def _set_integer(self, col: int, integer: bool) -> None:
        import highspy

        self._h.changeColIntegrality(
            col, highspy.HighsVarType.kInteger if integer else highspy.HighsVarType.kContinuous
        )
        self._integer[col] = integer

    @property
    def _h(self) -> Any:
        if self._highs is None:
            self.sync()
        return self._highs

    def version(self) -> str:
        import highspy

        h = self._highs if self._highs is not None else highspy.Highs()
        return f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"

    # -- direct edits ---------------------------------------------------------------------------
    def fix(self, variables: Iterable[pyo.Var], source: str = "model") -> None:
        """Fix ``variables`` at their Pyomo values (``source="model"``) or at the last HiGHS
        solution (``"solution"``); integers are rounded."""
        values = self._h.getSolution().col_value if source == "solution" else None
        cols = self._cols
        for var in variables:
            col = cols.get(id(var))
            value = var.value if values is None or col is None else float(values[col])
            if value is None:
                continue
            value = float(round(value)) if var.is_integer() else float(value)
            var.fix(value, skip_validation=True)
            if col is not None:
                self._set_bounds(col, value, value)

    def release(self, variables: Iterable[pyo.Var], keep: Set[int] = frozenset()) -> None:
        """Give ``variables`` their own bounds back, except those whose ``id`` is in ``keep``
        (and integers held by :meth:`relax_integers`)."""
        cols = self._cols
        for var in variables:
            if id(var) in keep or id(var) in self._relaxed:
                continue
            var.unfix()
            col = cols.get(id(var))
            if col is not None:
                lower, upper = var.bounds
                self._set_bounds(
                    col, -math.inf if lower is None else float(lower), math.inf if upper is None else float(upper)
                )

    def relax_integers(self) -> None:
        """Fix every integer column at its (rounded) value and make it continuous: later runs are LPs."""
        self._h  # noqa: B018 (hands the model over if needed)
        for col in np.flatnonzero(self._integer):
            var = self._columns[col]
            if var.value is None:
                continue
            value = float(round(var.value))
            var.fix(value, skip_validation=True)
            self._set_bounds(int(col), value, value)
            self._set_integer(int(col), False)
            self._relaxed.add(id(var))

    def restore_columns(self, keep_fixed: set[int]) -> None:
        """Every variable but those in ``keep_fixed`` (ids) unfixed, with its own bounds, integers
        integer again (undoes :meth:`fix` and :meth:`relax_integers`)."""
        cols = self._cols
        for var in self.model.component_data_objects(pyo.Var):
            if id(var) in keep_fixed:
                continue
            if var.fixed:
                var.unfix()
            col = cols.get(id(var))
            if col is None:
                continue
            lower, upper = var.bounds
            self._set_bounds(
                col, -math.inf if lower is None else float(lower), math.inf if upper is None else float(upper)
            )
            if id(var) in self._relaxed:
                self._set_integer(col, True)
        self._relaxed.clear()

    def update_rows(self, constraints: Iterable[pyo.Constraint]) -> None:
        """Row bounds of ``constraints`` from the current parameter values (constraints HiGHS does
        not hold are skipped). Fixed variables are columns in HiGHS, so they stay out of the
        constant that moves to the bounds."""
        from pyomo.core.expr.visitor import identify_variables
        from pyomo.repn import generate_standard_repn

        self._h  # noqa: B018 (hands the model over if needed)
        rows = self._rows
        for con in constraints:
            row = rows.get(id(con))
            if row is None:
                continue
            fixed = [v for v in identify_variables(con.body, include_fixed=True) if v.fixed]
            for var in fixed:
                var.unfix()
            constant = generate_standard_repn(con.body, compute_values=True, quadratic=False).constant
            for var in fixed:
                var.fix()
            lower = -math.inf if con.lower is None else pyo.value(con.lower) - constant
            upper = math.inf if con.upper is None else pyo.value(con.upper) - constant
            self._highs.changeRowBounds(row, lower, upper)

    def holds(self, constraint) -> bool:
        """Whether HiGHS holds ``constraint`` as a row."""
        self._h  # noqa: B018
        return id(constraint) in self._rows

    def row_duals(self, constraints: Iterable[pyo.Constraint]) -> np.ndarray:
        """HiGHS's dual values of ``constraints`` after the last run (NaN where HiGHS holds no row
        or has no dual solution), in the objective's units per unit of the row. HiGHS's sign
        convention: reduced cost = c - A^T y, so a column with entries ``a`` in these rows and no
        cost lowers the objective by ``a . y`` per unit."""
        solution = self._h.getSolution()
        duals = np.asarray(solution.row_dual, dtype=float) if solution.dual_valid else None
        out = []
        for con in constraints:
            row = self._rows.get(id(con))
            out.append(math.nan if row is None or duals is None else float(duals[row]))
        return np.asarray(out, dtype=float)

    def set_start(self, start: Mapping) -> None:
        """Hand HiGHS a starting solution (values by variable) for the next run."""
        import highspy

        cols = self._cols
        values = [0.0] * self._h.getNumCol()
        for var, value in start.items():
            if id(var) in cols and value is not None:
                values[cols[id(var)]] = float(value)
        solution = highspy.HighsSolution()
        solution.col_value = values
        solution.value_valid = True
        self._h.setSolution(solution)

    def load(self) -> None:
        """The last HiGHS solution into the free Pyomo variables. Fixed variables keep their exact
        values (HiGHS may return them a few 1e-9 off, and a pooled EV plan fixed for the AC
        correction is shared out car by car afterwards)."""
        values = self._h.getSolution().col_value
        for var, value in zip(self._columns, values, strict=False):
            if not var.fixed:
                var.set_value(float(value), skip_validation=True)

    # -- runs -----------------------------------------------------------------------------------
    def _integers(self) -> tuple[int, bool]:
        """How many integer columns HiGHS holds, and whether any of them is free."""
        self._h  # noqa: B018
        return int(self._integer.sum()), bool((self._integer & (self._lower < self._upper)).any())

    def _options(self, time_limit_s: float, milp: bool) -> dict:
        threads = int(self.solver.threads)
        options = {
            "mip_rel_gap": float(self.solver.mip_gap),
            "threads": threads,
            "output_flag": True,
            "log_to_console": False,
            "random_seed": 0,
            "time_limit": max(float(time_limit_s), 0.0),
            # HiGHS searches a MIP's tree in parallel only when told; the options persist
            # between runs, so LPs (integers fixed) get the default back
            "parallel": "on" if threads > 1 and milp else "choose",
        }
        if self.log_file is not None:
            Path(self.log_file).parent.mkdir(parents=True, exist_ok=True)
            options["log_file"] = self.log_file
        return options

    def solve(
        self,
        stage: str,
        *,
        start: Mapping | None = None,
        time_limit_s: float | None = None,
        sync: bool = True,
        refine: bool = True,
    ) -> SolveResult:
        """Run HiGHS on the model (``sync``: bring it up to date with Pyomo first) and load the
        solution into the free variables when there is one. With squared objective terms and
        ``refine``, tangents are added where the solution sits and the model is re-solved from it,
        all rounds within the one ``time_limit_s`` (default ``solver.time_limit_s``); the round
        with the best exact objective is kept. Returns the result with this call's stages."""
        budget = float(self.solver.time_limit_s if time_limit_s is None else time_limit_s)
        began = time.perf_counter()
        if not self.available:
            return SolveResult(SolveStatus.ERROR, "solver not available", diagnostics=["highspy is not installed"])
        try:
            if sync:
                self.sync()
            result = self._run(stage, start, budget)
        except Exception as err:  # a failure inside the solver is recorded, not hidden
            log.exception("HiGHS failed")
            seconds = time.perf_counter() - began  # the hand-over or update included
            self._pending = 0.0
            failed = Stage(stage, "?", SolveStatus.ERROR.value, math.nan, math.nan, math.nan, math.nan, seconds)
            self.stages.append(failed)
            return SolveResult(
                SolveStatus.ERROR,
                "error",
                solve_seconds=0.0,
                wall_seconds=seconds,
                stages=[failed],
                diagnostics=[f"{type(err).__name__}: {err}"],
            )
        if result.status.has_solution and refine:
            result = self._refine(stage, result, budget, began)
        return result

    def _run(self, stage: str, start: Mapping | None, time_limit_s: float) -> SolveResult:
        import highspy

        began = time.perf_counter()
        h = self._h
        integers, milp = self._integers()
        options = self._options(time_limit_s, milp)
        for key, value in options.items():
            h.setOptionValue(key, value)
        # HiGHS measures its time limit on the run clock of the whole session, which keeps counting
        # over every earlier run: give this run its own budget on top of what the clock shows
        h.setOptionValue("time_limit", float(options["time_limit"]) + float(h.getRunTime()))
        _use_threads(int(self.solver.threads))
        if start:
            self.set_start(start)
        highs_began = h.getRunTime()
        h.run()
        highs_seconds = h.getRunTime() - highs_began
        info = h.getInfo()
        model_status = h.getModelStatus()
        name = model_status.name if hasattr(model_status, "name") else str(model_status)
        has_point = int(info.primal_solution_status) == int(highspy.SolutionStatus.kSolutionStatusFeasible)
        status = map_status(name, has_point)
        objective = float(info.objective_function_value) if status.has_solution else math.nan
        if not milp:
            bound = objective if status is SolveStatus.OPTIMAL else math.nan
        else:
            bound = (
                float(info.mip_dual_bound) if status.has_solution or math.isfinite(info.mip_dual_bound) else math.nan
            )
        gap = relative_gap(objective, bound) if status.has_solution else math.nan
        if milp and status is SolveStatus.OPTIMAL and not gap <= float(self.solver.mip_gap) + 1e-9:
            status = SolveStatus.FEASIBLE  # HiGHS may stop on its absolute gap: the relative one is the claim
        result = SolveResult(
            status=status,
            termination=h.modelStatusToString(model_status),
            objective=objective,
            bound=bound,
            mip_gap=gap,
            rows=int(h.getNumRow()),
            columns=int(h.getNumCol()),
            integers=integers,
            nonzeros=int(h.getNumNz()),
            solver_version=self.version(),
            options={
                k: (lambda v: v[1] if isinstance(v, tuple) else v)(h.getOptionValue(k)) for k in _REPORTED_OPTIONS
            },
        )
        result.options["time_limit"] = float(options["time_limit"])  # this run's own budget, not the clock's mark
        if status.has_solution:
            self.load()
        else:
            result.diagnostics.append(f"HiGHS stopped with {result.termination} and no usable solution")
        record = Stage(
            stage,
            "MILP" if milp else "LP",
            status.value,
            objective,
            bound,
            gap,
            highs_seconds,
            time.perf_counter() - began + self._pending,  # with the hand-over or update before the run
            float(options["time_limit"]),
        )
        self._pending = 0.0
        self.stages.append(record)
        result.stages = [record]
        result.solve_seconds, result.wall_seconds = highs_seconds, record.wall_seconds
        return result

    def _refine(self, stage: str, result: SolveResult, budget: float, began: float) -> SolveResult:
        """Outer approximation of squared objective terms (see :meth:`solve`)."""
        from feederflex.model.objectives import exact_score, refine

        terms = getattr(self.model, "terms", None)
        if terms is None or not getattr(terms, "_sq", None):
            return result
        rounds = terms._refine[1]
        stages = list(result.stages)
        best, best_score, best_values = result, exact_score(self.model), snapshot(self.model)
        for round_no in range(1, rounds + 1):
            left = budget - (time.perf_counter() - began)
            if left <= 0:
                best.diagnostics.append(f"tangent refinement stopped after {round_no - 1} rounds: time limit")
                break
            if not refine(self.model):
                break
            start = snapshot(self.model)
            self.sync()
            trial = self._run(f"{stage} / tangents {round_no}", start, left)
            stages += trial.stages
            if not trial.status.has_solution:
                best.diagnostics.append(f"tangent refinement round {round_no} stopped: HiGHS {trial.termination}")
                break
            score = exact_score(self.model)
            if _better(score, best_score):
                best, best_score, best_values = trial, score, snapshot(self.model)
                best.refinements = round_no
            else:
                best.diagnostics.append(
                    f"tangent refinement round {round_no} ended worse by the exact objective "
                    f"({score[1]:.6g} against {best_score[1]:.6g}); the better round is kept"
                )
        restore(best_values)
        out = replace(best, stages=stages, diagnostics=list(best.diagnostics))
        out.rows = int(self._h.getNumRow())
        out.solve_seconds = float(sum(s.highs_seconds for s in stages))
        out.wall_seconds = float(sum(s.wall_seconds for s in stages))
        return out


def _better(score: tuple[float, float], than: tuple[float, float]) -> bool:
    """Whether a solution with exact ``score`` (bound excess, objective) is at least as good as one
    with ``than``: less excess over the bounds on squared terms first, then no worse an objective."""
    excess, value = score
    if excess < than[0] - 1e-9:
        return True
    return excess <= than[0] + 1e-9 and value <= than[1] + 1e-9 * max(1.0, abs(than[1]))


def solve(
    model: pyo.ConcreteModel,
    solver: Solver | Mapping,
    log_file: str | Path | None = None,
    *,
    session: Session | None = None,
    start: Mapping | None = None,
    stage: str = "solve",
) -> SolveResult:
    """Solve ``model`` with HiGHS (``time_limit_s``, ``mip_gap``, ``threads`` from ``solver``) in
    ``session`` (a new one if None) and return the result of this solve's stages."""
    session = session if session is not None else Session(model, solver, log_file)
    return session.solve(stage, start=start)
