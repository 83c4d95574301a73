"""Fixtures of the foundation tests."""

from __future__ import annotations

import pytest

from incidentlib import redact


@pytest.fixture
def isolated_secrets(monkeypatch):
    """Registered secrets live in the module for the whole process: give each test its own."""
    monkeypatch.setattr(redact, "_known", set())
    monkeypatch.setattr(redact, "_known_longest_first", ())
