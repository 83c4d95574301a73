"""The dangers DBAs check, staged for real on PostgreSQL 15 and 18 (each test runs on both), read
through the read-only session, with their findings. Staged in a database of their own, so the
other tests never see them; the server-wide ones (a prepared transaction, a slot) end with the
test."""

from __future__ import annotations

import itertools
import os
import time

import psycopg
import pytest

from incidentlib.pg import connections as pg_connections
from incidentlib.pg import dangers, space
from incidentlib.pg import session as pg
from incidentlib.sandbox.postgres import Stager

pytestmark = pytest.mark.pg
_names = itertools.count()


@pytest.fixture(scope="module")
def danger_db(pg_server):
    """A database of this module's own (one per server version)."""
    return pg_server.create_database(f"dangers_{os.getpid()}_{next(_names)}")


@pytest.fixture
def staged(danger_db):
    s = Stager(danger_db)
    yield s
    s.close()


@pytest.fixture
def conn(danger_db):
    c = pg.connect(danger_db)
    yield c
    c.close()


def _version(conn) -> int:
    return pg_connections.fetch_server(conn)["server_version_num"]


def test_sequences_near_their_end_against_their_own_limit_and_their_columns(
    staged, danger_db, conn
):
    staged.sequence_at("small_seq", 95)
    with psycopg.connect(danger_db, autocommit=True) as su:
        su.execute("CREATE TABLE IF NOT EXISTS orders (id int)")  # an int column, a bigint sequence
        su.execute("CREATE SEQUENCE IF NOT EXISTS orders_id_seq AS bigint OWNED BY orders.id")
        su.execute("SELECT setval('orders_id_seq', 2040109465)")  # 95% of 2^31 - 1
    seqs = dangers.sequences_frame(dangers.fetch_sequences(conn)).set_index("sequence")
    small, orders = seqs.loc["small_seq"], seqs.loc["orders_id_seq"]
    assert (small["data_type"], small["last_value"], small["max_value"]) == (
        "smallint",
        31128,
        32767,
    )
    assert small["pct_used"] == 95.0 and small["readable"]
    assert (orders["owned_by"], orders["column_type"], orders["sequence_max"]) == (
        "orders.id",
        "integer",
        9223372036854775807,
    )
    assert orders["max_value"] == 2147483647 and orders["pct_used"] == 95.0  # the column bites
    assert seqs.loc["stage_cards_id_seq", "pct_used"] == 0.0  # 200 of 2^31: nothing to say
    found = {f["title"]: f for f in dangers.sequence_findings(seqs.reset_index())}
    assert set(found) == {
        "sequence public.small_seq at 95.0% of its range",
        "sequence public.orders_id_seq at 95.0% of its range",
    }
    assert {f["severity"] for f in found.values()} == {"SEV3"}
    assert found["sequence public.orders_id_seq at 95.0% of its range"]["next_step"].startswith(
        "the column orders.id (integer) is the limit: ALTER TABLE public.orders ALTER COLUMN id "
        "TYPE bigint"
    )
    assert found["sequence public.small_seq at 95.0% of its range"]["next_step"].startswith(
        "ALTER SEQUENCE public.small_seq AS bigint"
    )


def test_an_invalid_index_left_by_a_failed_concurrent_build(staged, conn):
    staged.invalid_index("cards_holder_once")
    invalid = dangers.invalid_indexes_frame(dangers.fetch_invalid_indexes(conn))
    row = invalid[invalid["index"] == "cards_holder_once"].iloc[0]
    assert (row["schema"], row["table"]) == ("public", "stage_cards")
    assert row["definition"] == (
        "CREATE UNIQUE INDEX cards_holder_once ON public.stage_cards USING btree (holder)"
    )
    [finding] = [
        f for f in dangers.invalid_index_findings(invalid) if "cards_holder_once" in f["title"]
    ]
    assert finding["title"] == "invalid index public.cards_holder_once on public.stage_cards"
    assert finding["next_step"].startswith("DROP INDEX CONCURRENTLY public.cards_holder_once;")


def test_a_prepared_transaction_holds_the_xmin_and_is_found(staged, conn):
    gid = staged.prepared_transaction(f"tx-{os.getpid()}-{next(_names)}")
    idle = staged.idle_in_transaction()
    prepared = dangers.prepared_xacts_frame(dangers.fetch_prepared_xacts(conn))
    row = prepared[prepared["gid"] == gid].iloc[0]
    assert row["owner"] == "postgres" and row["age_s"] >= 0 and row["xid_age"] >= 1
    assert row["database"].startswith("dangers_")
    holders = dangers.xmin_holders_frame(dangers.fetch_xmin_holders(conn))
    kinds = dict(zip(holders["holder"], holders["kind"], strict=True))
    assert kinds[gid] == "prepared transaction" and kinds[str(idle)] == "session"
    assert str(conn.info.backend_pid) not in kinds  # our own snapshot is not a holder
    assert dangers.prepared_xact_findings(prepared, threshold_s=3600) == []
    [f] = [f for f in dangers.prepared_xact_findings(prepared, threshold_s=0) if gid in f["title"]]
    assert f["severity"] == "SEV3" and f"ROLLBACK PREPARED '{gid}'" in f["next_step"]
    [x] = dangers.xmin_findings(holders, threshold_s=0)
    assert x["title"].startswith("vacuum is held back by ") and x["severity"] == "SEV4"


def test_checkpoints_requested_are_counted_from_the_right_view(staged, conn):
    version = _version(conn)
    before = dangers.checkpoints_frame(dangers.fetch_checkpoints(conn, server_version_num=version))
    staged.checkpoints(3)
    deadline = time.monotonic() + 5  # the checkpointer reports its counters on its own time
    while True:
        after = dangers.checkpoints_frame(
            dangers.fetch_checkpoints(conn, server_version_num=version)
        )
        if after.loc[0, "requested"] - before.loc[0, "requested"] >= 3:
            break
        assert time.monotonic() < deadline, (before, after)
        time.sleep(0.1)
    expected = "pg_stat_checkpointer" if version >= 170000 else "pg_stat_bgwriter"
    assert after.loc[0, "source"] == expected
    assert after.loc[0, "requested"] - before.loc[0, "requested"] == 3
    assert after.loc[0, "max_wal_size"] == "1GB" and after.loc[0, "wal_bytes"] > 0
    [f] = dangers.checkpoint_findings(after.assign(timed=0, requested_pct=100.0))
    assert f["title"] == "100% of checkpoints were requested, not timed"
    assert "raise max_wal_size (now 1GB)" in f["next_step"]


def test_a_running_vacuum_and_a_waiting_index_build_with_their_progress(staged, conn):
    staged.idle_in_transaction()  # the concurrent build waits for it
    build = staged.index_build_waiting()
    vacuum = staged.slow_vacuum(rows=20_000)
    progress = dangers.progress_frame(dangers.fetch_progress(conn)).set_index("pid")
    b, v = progress.loc[build], progress.loc[vacuum]
    assert (b["kind"], b["relation"]) == ("create index", "stage_accounts")
    assert b["phase"].startswith("waiting for") and b["wait_event_type"] == "Lock"
    assert (v["kind"], v["relation"], v["phase"]) == ("vacuum", "stage_vacuum", "scanning heap")
    assert v["blocks_total"] > 100 and 0 <= v["pct_done"] < 100
    assert v["query"] == 'VACUUM "stage_vacuum"'
    [f] = dangers.progress_findings(progress.reset_index(), threshold_s=0)
    assert f["title"] == "index build on stage_accounts waits (" + b["phase"] + ")"
    tables = space.tables_frame(space.fetch_tables(conn, limit=1))
    assert tables.set_index("table").loc["stage_vacuum", "dead_tuples"] == 10_000
    assert set(tables["table"]) == {"stage_vacuum"}  # the largest is the one with most dead tuples
    invalid = dangers.invalid_indexes_frame(dangers.fetch_invalid_indexes(conn))
    assert "stage_accounts_owner_building" in set(invalid["index"])  # building: invalid meanwhile
    assert not [
        f
        for f in dangers.invalid_index_findings(invalid, progress.reset_index())
        if "owner_building" in f["title"]
    ]  # ... but not a leftover


def test_an_inactive_slot_with_its_wal_status(danger_db, conn):
    name = f"idle_slot_{os.getpid()}_{next(_names)}"
    with psycopg.connect(danger_db, autocommit=True) as su:
        su.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
    try:
        slots = space.slots_frame(space.fetch_slots(conn, server_version_num=_version(conn)))
        row = slots.set_index("slot_name").loc[name]
        assert (row["slot_type"], row["active"], row["wal_status"]) == (
            "physical",
            False,
            "reserved",
        )
        assert row["retained_bytes"] > 0 and row["retained"].endswith(("kB", "MB", "bytes"))
    finally:
        with psycopg.connect(danger_db, autocommit=True) as su:
            su.execute("SELECT pg_drop_replication_slot(%s)", (name,))


def test_every_danger_query_is_marked_and_runs_read_only_within_its_timeouts(conn):
    for sql in (
        dangers.SEQUENCES_SQL,
        dangers.INVALID_INDEXES_SQL,
        dangers.PREPARED_XACTS_SQL,
        dangers.XMIN_HOLDERS_SQL,
        dangers.checkpoints_sql(_version(conn)),
        dangers.PROGRESS_SQL,
        dangers.WAL_SQL,
    ):
        assert sql.startswith("/* incident-runbook: ")
        pg.query(conn, sql)
    assert pg.query(conn, "SELECT current_setting('transaction_read_only') AS ro")[0]["ro"] == "on"
