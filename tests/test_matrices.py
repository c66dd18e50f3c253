"""The model as HiGHS's matrices: the numpy stand-ins give Pyomo's own compile, and the arrays
handed to HiGHS hold every row, bound and coefficient of the model."""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo
import pytest

from feederflex.matrices import _standard_form, column_bounds, column_major, compile_model


def _model() -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(5), bounds=(0, 4))
    m.b = pyo.Var(within=pyo.Binary)
    m.p = pyo.Param(initialize=3.0, mutable=True)
    m.eq = pyo.Constraint(expr=m.x[0] + 2 * m.x[1] + m.x[0] == m.p)  # a repeated variable is summed
    m.ranged = pyo.Constraint(expr=pyo.inequality(-1.0, m.x[2] - m.x[3] + 0 * m.x[4], 2.5))  # a zero is dropped
    m.upper = pyo.Constraint(expr=m.x[4] <= 3 * m.b + m.p)
    m.lower = pyo.Constraint(expr=m.x[1] + m.x[3] >= 1.0)
    m.obj = pyo.Objective(expr=m.x[0] - 2 * m.x[2] + 5 * m.b + 7, sense=pyo.maximize)
    return m


def test_the_numpy_stand_ins_give_pyomos_own_compile():
    from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

    m = _model()
    mine = _standard_form(m)
    pyomos = LinearStandardFormCompiler().write(m, mixed_form=True, set_sense=None)
    assert [v.name for v in mine.columns] == [v.name for v in pyomos.columns]
    assert [(r.constraint.name, r.bound_type) for r in mine.rows] == [
        (r.constraint.name, r.bound_type) for r in pyomos.rows
    ]
    np.testing.assert_array_equal(mine.A.toarray(), pyomos.A.toarray())
    np.testing.assert_array_equal(mine.c.toarray(), pyomos.c.toarray())
    np.testing.assert_array_equal(np.asarray(mine.rhs), np.asarray(pyomos.rhs))


def test_a_compiled_model_holds_every_row_bound_and_coefficient():
    m = _model()
    m.x[3].fix(1.5)  # stays a column, at its value
    compiled = compile_model(m)
    names = [c.name for c in compiled.rows]
    assert names == ["eq", "ranged", "upper", "lower"]  # the ranged constraint is one row
    columns = {v.name: k for k, v in enumerate(compiled.columns)}
    assert "x[3]" in columns and m.x[3].fixed  # compiled as a column and fixed again afterwards
    start, index, value = column_major(*compiled.entries, len(compiled.columns))
    dense = np.zeros((len(compiled.rows), len(compiled.columns)))
    for col in range(len(compiled.columns)):
        dense[index[start[col] : start[col + 1]], col] = value[start[col] : start[col + 1]]
    expected = {
        ("eq", "x[0]"): 2.0,
        ("eq", "x[1]"): 2.0,
        ("ranged", "x[2]"): 1.0,
        ("ranged", "x[3]"): -1.0,
        ("upper", "x[4]"): 1.0,
        ("upper", "b"): -3.0,
        ("lower", "x[1]"): 1.0,
        ("lower", "x[3]"): 1.0,
    }
    for (row, col), coefficient in expected.items():
        assert dense[names.index(row), columns[col]] == coefficient
    assert np.count_nonzero(dense) == len(expected)  # 0 * x[4] left no entry
    bounds = dict(zip(names, zip(compiled.row_lower, compiled.row_upper, strict=True), strict=True))
    assert bounds == {"eq": (3.0, 3.0), "ranged": (-1.0, 2.5), "upper": (-math.inf, 3.0), "lower": (1.0, math.inf)}
    assert compiled.maximize and compiled.offset == pytest.approx(7.0)
    assert compiled.cost[columns["x[2]"]] == -2.0 and compiled.cost[columns["b"]] == 5.0
    lower, upper, integer = column_bounds(compiled.columns)
    assert lower[columns["x[3]"]] == upper[columns["x[3]"]] == 1.5
    assert integer[columns["b"]] and not integer[columns["x[0]"]]
