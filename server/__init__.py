"""Hikaze Model Manager's manager process (the sidecar): library, API and background jobs."""

__version__ = "0.1.0"
