"""The database runbook's public surface: each module's `__all__` and the scraps' columns (a public interface
other tools read: change them on purpose, here, never by accident)."""

from __future__ import annotations

import json
from pathlib import Path

from incidentlib import (
    pg_actions,
    pg_activity,
    pg_charts,
    pg_connections,
    pg_locks,
    pg_pods,
    pg_space,
    pg_statements,
    pgdiag,
)

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "database.ipynb"


def test_each_module_exports_what_it_defines():
    for module in (pg_actions, pg_activity, pg_charts, pg_connections, pg_locks, pg_pods, pg_space, pg_statements, pgdiag):
        assert module.__all__, module.__name__
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert not missing, f"{module.__name__} exports undefined {missing}"


def test_the_scraps_the_issue_names_keep_their_columns():
    assert {"query", "calls", "mean_ms", "total_ms", "rows"} <= set(pg_statements.SLOW_QUERY_COLUMNS)
    assert {"blocked_pid", "blocking_pid", "root_blocking_pid", "wait_s", "mode", "relation"} <= set(pg_locks.BLOCKING_COLUMNS)
    assert pg_connections.CONNECTION_COLUMNS == ["state", "database", "user", "application", "client", "count", "longest_s"]
    assert pg_activity.ACTIVITY_COLUMNS[:7] == ["pid", "database", "user", "application", "client", "state", "query_s"]
    assert pg_space.DATABASE_SIZE_COLUMNS[:3] == ["database", "size_bytes", "size"]


def test_every_sql_constant_carries_the_runbook_marker():
    """pg_stat_statements readers (and the benchmark) tell the runbook's own statements by this comment."""
    constants = [pg_activity.SESSIONS_SQL, pg_connections.SERVER_SQL, pg_statements.EXTENSION_SQL, pg_statements.STATEMENTS_SQL,
                 pg_locks.BLOCKING_SQL, pg_space.DATABASE_SIZES_SQL, pg_space.TABLES_SQL, pg_space.REPLICATION_SQL,
                 pg_space.SLOTS_SQL, pg_actions.SIGNAL_SQL, pg_actions.STILL_RUNNING_SQL]
    assert all(c.startswith("/* incident-runbook: ") for c in constants)


def test_the_notebook_glues_the_issues_scraps_and_ends_with_notifications():
    nb = json.loads(NOTEBOOK.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    for scrap in ("connections", "activity", "long_running", "slow_queries", "blocking", "database_sizes"):
        assert f'run.glue("{scrap}"' in code
    assert "run.finish(severity)" in code
    assert "".join(nb["cells"][-2]["source"]).startswith("## Notifications")
    assert "show_notifications(run, severity" in "".join(nb["cells"][-1]["source"])
