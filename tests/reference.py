"""The tiny studies' solutions as numbers, to check that a change meant to move no number moves none.

``python -m tests.reference DIR...`` writes tests/data/tiny_reference.json from the results/
folders of runs of the tiny studies; tests/test_workflow.py compares every fresh tiny run with it.
Regenerate it (and say why in the commit) only when a change is meant to change the numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

REFERENCE = Path(__file__).parent / "data" / "tiny_reference.json"
ARRAYS = ("p_grid_mw", "v_pu", "fess_e_mwh", "mess_e_mwh")


def numbers(path: Path) -> dict:
    """Status, objective and the main schedule arrays of one solution file."""
    with xr.open_dataset(path) as ds:
        out = {"status": str(ds.attrs["solver_status"]), "objective": float(ds.attrs["solver_objective"])}
        for name in ARRAYS:
            if name in ds and ds[name].size:
                out[name] = np.round(ds[name].values.astype(float), 9).tolist()
    return out


def collect(results: Path) -> dict[str, dict]:
    """Every solution file under ``results`` (results/{study}), by its path relative to it."""
    return {str(p.relative_to(results)): numbers(p) for p in sorted(results.rglob("*.nc")) if _is_solution(p, results)}


def _is_solution(path: Path, results: Path) -> bool:
    part = path.relative_to(results).parts[0]
    tables = (results / "fronts", results / "payoff")  # gathered fronts and payoff tables: no schedule
    folders = ("solutions", "fronts", "compromises", "rolling", "payoff")
    return part in folders and not path.name.endswith(".ac.nc") and path.parent not in tables


if __name__ == "__main__":
    table = {Path(d).name: collect(Path(d)) for d in sys.argv[1:]}
    REFERENCE.write_text(json.dumps(table, indent=0, sort_keys=True, allow_nan=True) + "\n")
    print(f"{REFERENCE}: {sum(len(v) for v in table.values())} solution files")
