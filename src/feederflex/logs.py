"""Logging set-up for workflow jobs: the library logs, the job's log file receives."""

from __future__ import annotations

import logging
from pathlib import Path


def configure(log_file: str | Path | None, level: int = logging.INFO) -> None:
    """Send feederflex's log records (and warnings) to ``log_file`` and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    logging.captureWarnings(True)
