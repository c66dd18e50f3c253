"""Pyomo model of one scenario: one module per component, each adding its own Block."""

from __future__ import annotations

from feederflex.model.build import ScenarioData, build_model

__all__ = ["ScenarioData", "build_model"]
