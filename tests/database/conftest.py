"""Fixtures of the database tests."""

from __future__ import annotations

import uuid

import pytest

from incidentlib.pg import session as pg


@pytest.fixture(scope="session")
def roles(pg_server):
    """Two ordinary roles: one with pg_monitor, one without (names unique to this session: on
    `make mutate`'s server many sessions, some in the same process, create theirs)."""
    tag = uuid.uuid4().hex[:12]
    return {
        "plain": pg_server.create_role(f"db_plain_{tag}", "plain-pw-1"),
        "monitor": pg_server.create_role(f"db_monitor_{tag}", "monitor-pw-1", monitor=True),
    }


@pytest.fixture
def conn(pg_dsn):
    """A diagnostic session on the test database."""
    c = pg.connect(pg_dsn)
    yield c
    c.close()
