"""Fixtures of the notification tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .recorder import Recorder


@pytest.fixture
def hook() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()
