"""notebooks/database.ipynb against the dangers DBAs check, staged for real in a database of their
own, on PostgreSQL 15 and on 18 (its version-aware sections run on both sides of the 17 renames):
every new section's table, scrap and finding, then terminate_stale applied."""

from __future__ import annotations

import itertools
import os
import time

import psycopg
import pytest

from incidentlib.sandbox.postgres import SUPERUSER_PASSWORD, Stager

from .test_notebook import _no_password_dsn, execute

pytestmark = [pytest.mark.notebook, pytest.mark.pg, pytest.mark.pg_all_versions]
_names = itertools.count()


def _alive(dsn: str, pid: int) -> bool:
    with psycopg.connect(dsn, autocommit=True) as c:
        return bool(c.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone())


def test_the_dangers_are_found_explained_and_stale_sessions_ended(pg_server, tmp_path, monkeypatch):
    name = f"nb_dangers_{os.getpid()}_{next(_names)}"
    superuser = pg_server.create_database(name)
    stager = Stager(superuser)
    gid = f"nb-tx-{os.getpid()}-{next(_names)}"
    try:
        stager.sequence_at("order_numbers", 95)
        stager.invalid_index("cards_holder_once")
        stager.prepared_transaction(gid)
        stager.checkpoints(3)
        idle = stager.idle_in_transaction(app="reports")
        build = stager.index_build_waiting()
        vacuum = stager.slow_vacuum(rows=20_000)
        time.sleep(1.2)
        monkeypatch.setenv("PGPASSWORD", SUPERUSER_PASSWORD)
        scraps, text, printed = execute(
            tmp_path,
            dsn=_no_password_dsn(pg_server, dbname=name),
            long_query_threshold="1s",
            mitigation="terminate_stale",
            stale_threshold="1s",
            apply=True,
        )
        ended = {p: not _alive(superuser, p) for p in (idle, build, vacuum)}
    finally:
        stager.close()
    version = int(pg_server.install.major)
    assert all(s["ok"] for s in scraps["sources"] if s["source"].startswith("postgres")), scraps[
        "sources"
    ]
    titles = {f["title"]: f for f in scraps["findings"]}

    seqs = scraps["sequences"].set_index("sequence")
    assert seqs.loc["order_numbers", "pct_used"] == 95.0
    assert titles["sequence public.order_numbers at 95.0% of its range"]["severity"] == "SEV3"

    invalid = scraps["invalid_indexes"]
    assert {"cards_holder_once", "stage_accounts_owner_building"} <= set(invalid["index"])
    assert "invalid index public.cards_holder_once on public.stage_cards" in titles
    assert not [t for t in titles if "owner_building" in t]  # being built: not a leftover

    prepared = scraps["prepared_xacts"]
    assert prepared.loc[prepared["gid"] == gid, "database"].item() == name
    [prep] = [
        f for t, f in titles.items() if t.startswith(f"prepared transaction {gid!r} open for ")
    ]
    assert prep["severity"] == "SEV3" and f"ROLLBACK PREPARED '{gid}'" in prep["next_step"]
    assert "a prepared transaction blocks 1 session" in titles  # pid 0 in pg_blocking_pids

    holders = scraps["xmin_holders"]
    assert {"prepared transaction", "session"} <= set(holders["kind"])
    assert str(idle) in set(holders["holder"]) and gid in set(holders["holder"])
    assert any(t.startswith("vacuum is held back by ") for t in titles)

    progress = scraps["progress"].set_index("pid")
    assert progress.loc[build, "kind"] == "create index"
    assert (progress.loc[vacuum, "kind"], progress.loc[vacuum, "relation"]) == (
        "vacuum",
        "stage_vacuum",
    )
    assert titles[f"index build on stage_accounts waits ({progress.loc[build, 'phase']})"]

    checkpoints = scraps["checkpoints"]
    assert checkpoints.loc[0, "source"] == (
        "pg_stat_checkpointer" if version >= 17 else "pg_stat_bgwriter"
    )
    assert checkpoints.loc[0, "requested"] >= 3

    tables = scraps["tables"].set_index("table")
    assert tables.loc["stage_vacuum", "dead_tuples"] == 10_000
    assert tables.loc["stage_vacuum", "rank_dead"] == 1
    assert "most dead tuples:" in text and "holding back vacuum, oldest first:" in text
    assert list(scraps["slots"].columns)[:5] == [
        "slot_name",
        "slot_type",
        "database",
        "active",
        "retained_bytes",
    ]
    assert len(scraps["db_resources"]) == 0  # no cluster: not read, said so
    assert (
        next(s for s in scraps["sources"] if s["source"] == "kubernetes: database pod metrics")[
            "status"
        ]
        == "skipped"
    )

    [action] = scraps["actions"]
    assert (action["action"], action["applied"]) == ("terminate_stale", True)
    signalled = {s["pid"]: s["state"] for s in action["sessions"]}
    assert signalled[idle] == "idle in transaction"  # the runbook's second form: not only active
    assert {build, vacuum} <= set(signalled)
    assert ended == {idle: True, build: True, vacuum: True}
    assert SUPERUSER_PASSWORD not in text
