"""Fixtures of the evidence tests: the fixture notebooks, an archive made once per module,
chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "notebooks"
REPO = Path(__file__).resolve().parents[2]
SCENARIO_NOTEBOOKS = REPO / "notebooks"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def chromium() -> Iterator[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    yield CHROMIUM
