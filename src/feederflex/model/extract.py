"""Reading a model's variables into the arrays of the solution contract.

Every component module has a ``solution(read, data)`` next to the ``add_*`` that makes its block:
it returns that block's part of the solution dataset as named ``xarray.Variable`` objects with
their units. :func:`feederflex.solution.solution_dataset` puts the parts together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo
import xarray as xr


def values(component: Any, index_sets: Sequence[Sequence]) -> np.ndarray:
    """Values of an indexed Pyomo variable or parameter over ``index_sets``, in their order."""
    shape = [len(s) for s in index_sets]
    out = np.empty(shape)
    for pos in np.ndindex(*shape):
        key = tuple(s[p] for s, p in zip(index_sets, pos, strict=True))
        out[pos] = pyo.value(component[key if len(key) > 1 else key[0]])
    return out


@dataclass(frozen=True)
class Reader:
    """A model's variable values, or NaN for every decision when there is no solution.

    ``m`` is None when no model was built (inputs that failed before); ``solved`` is whether the
    model holds the schedule to report.
    """

    m: pyo.ConcreteModel | None
    solved: bool

    def take(self, block: str, var: str, *sets: Sequence) -> np.ndarray:
        """Values of ``m.<block>.<var>`` over ``sets`` (time last), as (time, ...) arrays."""
        if not self.solved or self.m is None:
            return np.full([len(s) for s in sets[::-1]], np.nan)
        return values(getattr(getattr(self.m, block), var), sets).T


def variable(dims: str | tuple[str, ...], data: Any, units: str) -> xr.Variable:
    """A solution variable with its units."""
    return xr.Variable(dims, np.asarray(data), attrs={"units": units})
