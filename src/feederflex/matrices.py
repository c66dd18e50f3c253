"""A Pyomo model as the matrices HiGHS holds, compiled in one pass over its expressions.

:func:`compile_model` turns the active linear constraints and the one active objective of a model
into a row-wise matrix, row and column bounds and costs with Pyomo's standard-form compiler
(``LinearStandardFormCompiler``): one walk over the expressions and numpy arrays out, instead of
one solver call per constraint. Fixed variables stay columns (their value is both of their bounds),
so that fixing or freeing one later changes two bounds, not the rows it sits in. A ranged
constraint is one row with both bounds, as HiGHS holds it.

:func:`column_bounds` reads the columns' current bounds, fixed values and integrality from Pyomo,
which is all that changes between most solves of one model (MESS search, AC correction with
integers kept, hosting trials).

No scipy: the compiler's sparse-matrix hooks are given numpy stand-ins (:class:`_CSR`,
:class:`_CSC`). Pyomo resolves its deferred scipy import with ``scipy.stats``, ``integrate`` and
``spatial``, which a solve job without an AC power flow would otherwise pay for at every start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC


@dataclass
class Compiled:
    """The matrices of one model: its non-zeros (``entries``, sorted by column then row), the bounds
    of its rows, the objective's costs, constant and sense, and the Pyomo objects behind each row
    and column."""

    columns: list[Any]  # VarData per column
    rows: list[Any]  # ConstraintData per row
    entries: tuple[np.ndarray, np.ndarray, np.ndarray]  # (row, column, value) of each non-zero, by column
    row_lower: np.ndarray
    row_upper: np.ndarray
    cost: np.ndarray
    offset: float
    maximize: bool
    objective: Any  # the active ObjectiveData
    constraints: frozenset[int]  # ids of every active constraint at compile time (rows or not)
    parameters: list[tuple[Any, Any]]  # every mutable parameter and its value at compile time


def mutable_parameters(model: pyo.Block) -> list[Any]:
    """Every mutable parameter of ``model`` (their values shape the rows)."""
    return [
        p
        for param in model.component_objects(pyo.Param, active=True, descend_into=True)
        if param.mutable
        for p in param.values()
    ]


def active_constraints(model: pyo.Block) -> frozenset[int]:
    """Ids of the model's active constraints (what a compile would see)."""
    return frozenset(id(con) for con in model.component_data_objects(pyo.Constraint, active=True))


def active_objective(model: pyo.Block) -> Any:
    """The model's one active objective."""
    objectives = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objectives) != 1:
        raise ValueError(f"model {model.name}: expected exactly one active objective, found {len(objectives)}")
    return objectives[0]


class _Compressed:
    """The part of a scipy compressed matrix that Pyomo's standard-form compiler uses."""

    def __init__(self, arrays: tuple, shape: Any) -> None:
        data, indices, indptr = arrays
        self.data = np.asarray(data, dtype=float)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.shape = (int(shape[0]), int(shape[1]))


class _CSR(_Compressed):
    def tocsc(self) -> _CSC:
        major = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        return _CSC.from_entries(major, self.indices, self.data, self.shape)


class _CSC(_Compressed):
    @classmethod
    def from_entries(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple) -> _CSC:
        """Column-compressed, sorted, duplicates summed and zeros dropped (what the compiler asks of scipy)."""
        order = np.lexsort((rows, cols))
        rows, cols, values = rows[order], cols[order], values[order]
        if rows.size:
            first = np.ones(rows.size, dtype=bool)
            first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            starts = np.flatnonzero(first)
            values = np.add.reduceat(values, starts)
            rows, cols = rows[starts], cols[starts]
            nonzero = values != 0
            rows, cols, values = rows[nonzero], cols[nonzero], values[nonzero]
        indptr = np.searchsorted(cols, np.arange(shape[1] + 1))
        return cls((values, rows, indptr), shape)

    def sum_duplicates(self) -> None:  # done in from_entries
        pass

    def eliminate_zeros(self) -> None:  # done in from_entries
        pass

    def toarray(self) -> np.ndarray:
        out = np.zeros(self.shape)
        cols = np.repeat(np.arange(self.shape[1]), np.diff(self.indptr))
        out[self.indices, cols] = self.data
        return out


def _standard_form(model: pyo.Block) -> Any:
    """Pyomo's standard-form compile of ``model`` in mixed form, objective sense kept, on numpy."""
    from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler, _LinearStandardFormCompiler_impl

    class _OnNumpy(_LinearStandardFormCompiler_impl):
        # the compiler's documented hooks; __init__ is replaced because the base one fills them
        # from scipy (and so imports it) the first time it runs
        _to_vector = staticmethod(np.fromiter)
        _csc_matrix = _CSC
        _csr_matrix = _CSR

        def __init__(self, config: Any) -> None:
            self.config = config

    config = LinearStandardFormCompiler.CONFIG({"mixed_form": True, "set_sense": None})
    with PauseGC():
        return _OnNumpy(config).write(model)


def compile_model(model: pyo.Block) -> Compiled:
    """The model's rows, columns and objective as arrays (see the module docstring)."""
    objective = active_objective(model)
    constraints = active_constraints(model)
    parameters = [(p, p.value) for p in mutable_parameters(model)]
    fixed = [var for var in model.component_data_objects(pyo.Var) if var.fixed]
    for var in fixed:  # fixed variables are compiled as columns, not folded into the bounds
        var.unfix()
    try:
        info = _standard_form(model)
    finally:
        for var in fixed:
            var.fix()
    # mixed form: an equality is one row (bound type 0); a ranged constraint its upper row (1)
    # followed by its lower row (-1) with the same coefficients; a one-sided one a single row
    kind = np.fromiter((row.bound_type for row in info.rows), dtype=int, count=len(info.rows))
    rhs = np.asarray(info.rhs, dtype=float)
    candidates = np.flatnonzero((kind[:-1] == 1) & (kind[1:] == -1))
    pairs = np.array([i for i in candidates if info.rows[i].constraint is info.rows[i + 1].constraint], dtype=int)
    lower = np.where(kind == 1, -math.inf, rhs)
    upper = np.where(kind == -1, math.inf, rhs)
    keep = np.ones(len(kind), dtype=bool)
    if pairs.size:
        lower[pairs] = rhs[pairs + 1]
        keep[pairs + 1] = False
    new_row = np.cumsum(keep) - 1  # each kept row's number once the lower halves are dropped
    matrix = info.A
    cols = np.repeat(np.arange(matrix.shape[1]), np.diff(matrix.indptr))
    kept = keep[matrix.indices] if matrix.indices.size else np.zeros(0, dtype=bool)
    n_columns = len(info.columns)
    cost = info.c.toarray()[0] if info.c.shape[0] else np.zeros(n_columns)
    rows, cols, values = new_row[matrix.indices[kept]], cols[kept], matrix.data[kept]
    return Compiled(
        columns=list(info.columns),
        rows=[row.constraint for row, k in zip(info.rows, keep, strict=True) if k],
        entries=(rows, cols, values),
        row_lower=lower[keep],
        row_upper=upper[keep],
        cost=np.asarray(cost, dtype=float),
        offset=float(info.c_offset[0]) if len(info.c_offset) else 0.0,
        maximize=objective.sense == pyo.maximize,
        objective=objective,
        constraints=constraints,
        parameters=parameters,
    )


def column_major(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_cols: int) -> tuple:
    """HiGHS's column-wise arrays (start, index, value) of non-zeros sorted by column then row."""
    order = np.lexsort((rows, cols))
    start = np.searchsorted(cols[order], np.arange(n_cols + 1))
    return start.astype(np.int32), rows[order].astype(np.int32), values[order]


def row_major(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int) -> tuple:
    """Row-wise arrays (start, index, value) of non-zeros."""
    order = np.lexsort((cols, rows))
    start = np.searchsorted(rows[order], np.arange(n_rows + 1))
    return start.astype(np.int32), cols[order].astype(np.int32), values[order]


def column_bounds(columns: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper bounds (a fixed variable's value for both) and integrality of ``columns``."""
    n = len(columns)
    lower = np.empty(n)
    upper = np.empty(n)
    integer = np.zeros(n, dtype=bool)
    integral: dict[int, bool] = {}  # by domain: a domain's integrality is asked once
    for k, var in enumerate(columns):
        domain = var.domain
        is_int = integral.get(id(domain))
        if is_int is None:
            is_int = integral[id(domain)] = bool(var.is_integer())
        integer[k] = is_int
        if var.fixed and var.value is not None:
            lower[k] = upper[k] = var.value
            continue
        lb, ub = var.bounds
        lower[k] = -math.inf if lb is None else lb
        upper[k] = math.inf if ub is None else ub
    return lower, upper, integer


def parameters_changed(parameters: list[tuple[Any, Any]]) -> bool:
    """Whether any parameter of a :attr:`Compiled.parameters` list has another value now."""
    return any(p.value != value for p, value in parameters)
