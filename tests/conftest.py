"""Shared pytest fixtures. Nothing here is autouse: a pure test starts nothing."""

from __future__ import annotations

pytest_plugins = ["incidentlib.sim.testing"]
