"""The errors feederflex raises for input it cannot use, all under one base class.

Every message names where the problem is (the file, the scenario or the dataset), the key and
the value, and what was expected, in this form::

    config/studies/x.yaml: scenarios.list.a (scenario 'a'): pv[0] (pv11).bus = 34: not a bus of the feeder

and is raised before any expensive work starts. Catch :class:`FeederflexError` for all of them.
"""

from __future__ import annotations

from typing import Any


class FeederflexError(ValueError):
    """Input that feederflex cannot use; the message says where, which key and value, and what was expected."""

    @classmethod
    def at(cls, where: str, key: str, value: Any, expected: str) -> FeederflexError:
        """The error for ``key = value`` at ``where`` (empty: no prefix), with what was ``expected``."""
        prefix = f"{where}: " if where else ""
        return cls(f"{prefix}{key} = {value}: {expected}")


class ConfigError(FeederflexError):
    """A study config that does not match the schema or refers to things that do not exist."""


class InputError(FeederflexError):
    """Prepared inputs that do not fit the scenario (checked before the model is built)."""


class FeederError(FeederflexError):
    """A network that feederflex cannot use (meshed, disconnected, unsupported elements)."""


class FleetError(FeederflexError):
    """A fleet definition that cannot be sampled."""


class ProfileError(FeederflexError):
    """A day definition that cannot be turned into profiles."""


class TravelError(FeederflexError):
    """Stations or transport settings that cannot give travel times."""


class RollingError(FeederflexError):
    """Forecast-error or operation settings that cannot be used."""


class MultiObjectiveError(FeederflexError):
    """A multiobjective section that does not fit the study."""
