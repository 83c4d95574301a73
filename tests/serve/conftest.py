"""Fixtures of the serve tests: chromium, for a look at the index (the evidence tests' own)."""

from __future__ import annotations

from evidence.conftest import chromium

__all__ = ["chromium"]
