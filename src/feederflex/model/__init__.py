"""Pyomo model of one scenario: one module per component, each adding its own Block.

``ScenarioData`` and ``build_model`` are imported on first use, so that importing a module of
this package that needs no Pyomo (:mod:`feederflex.model.catalogue`, :mod:`feederflex.model.size`),
as the workflow does while it parses, does not import Pyomo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feederflex.model.build import ScenarioData, build_model

__all__ = ["ScenarioData", "build_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from feederflex.model import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
