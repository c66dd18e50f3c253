"""feederflex: multi-scenario scheduling of distribution feeders with PV, EVs and storage."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
