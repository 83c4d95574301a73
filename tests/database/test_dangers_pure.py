"""Pure rules of the new database sections and mitigations, on small fixtures: nothing started."""

from __future__ import annotations

import math
import shlex

import pandas as pd
import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.kube import actions
from incidentlib.pg import actions as pg_actions
from incidentlib.pg import activity as pg_activity
from incidentlib.pg import dangers, pods, space
from incidentlib.scenarios import database as pgdiag
from incidentlib.scenarios import triage
from incidentlib.service.prometheus import alert_row, alerts_table

from .pg_rows import session


def _seq(**kw):
    row = {
        "schema": "public",
        "sequence": "s",
        "data_type": "bigint",
        "last_value": 10,
        "min_value": 1,
        "sequence_max": 9223372036854775807,
        "increment_by": 1,
        "cycle": False,
        "owned_by": None,
        "column_type": None,
        "column_max": None,
        "readable": True,
    }
    return {**row, **kw}


def test_a_sequence_is_measured_against_the_limit_that_bites_first():
    rows = [
        _seq(sequence="plain", data_type="smallint", last_value=29491, sequence_max=32767),
        _seq(
            sequence="fed",
            last_value=2_126_008_811,
            owned_by="orders.id",
            column_type="integer",
            column_max=2147483647,
        ),
        _seq(sequence="never_used", last_value=None),
        _seq(sequence="down", increment_by=-1, min_value=-100, sequence_max=-1, last_value=-91),
    ]
    df = dangers.sequences_frame(rows).set_index("sequence")
    assert df.loc["plain", "pct_used"] == 90.0 and df.loc["plain", "max_value"] == 32767
    assert df.loc["fed", "max_value"] == 2147483647 and df.loc["fed", "pct_used"] == 99.0
    assert math.isnan(df.loc["never_used", "pct_used"])
    assert df.loc["down", "pct_used"] == 90.91 and df.loc["down", "max_value"] == -100
    assert list(df.index[:2]) == ["fed", "down"]  # fullest first
    found = {f["title"]: f["severity"] for f in dangers.sequence_findings(df.reset_index())}
    assert found == {
        "sequence public.fed at 99.0% of its range": "SEV2",
        "sequence public.down at 90.9% of its range": "SEV3",
        "sequence public.plain at 90.0% of its range": "SEV3",
    }
    assert dangers.sequence_findings(dangers.sequences_frame([_seq(last_value=10)])) == []


def test_checkpoint_counters_come_from_the_view_of_the_version():
    assert "FROM pg_stat_bgwriter" in dangers.checkpoints_sql(160004)
    assert "FROM pg_stat_checkpointer" in dangers.checkpoints_sql(170000)
    assert "num_requested AS requested" in dangers.checkpoints_sql(180006)
    df = dangers.checkpoints_frame({"timed": 2, "requested": 6, "max_wal_size": "1GB"})
    assert df.loc[0, "requested_pct"] == 75.0
    [f] = dangers.checkpoint_findings(df)
    assert f["severity"] == "SEV4" and f["title"] == "75% of checkpoints were requested, not timed"
    few = dangers.checkpoints_frame({"timed": 0, "requested": 2})
    assert dangers.checkpoint_findings(few) == []  # two CHECKPOINT commands say nothing yet
    assert dangers.checkpoints_frame({"timed": 0, "requested": 0}).loc[0, "requested_pct"] is None


def test_the_oldest_xmin_holder_is_a_finding_only_when_old():
    holders = dangers.xmin_holders_frame(
        [
            {"kind": "replication slot", "holder": "old", "state": "inactive", "xmin_age": 2e8},
            {"kind": "session", "holder": "42", "pid": 42, "xmin_age": 10, "age_s": 5.0},
        ]
    )
    [f] = dangers.xmin_findings(holders, threshold_s=300)
    assert (f["severity"], f["title"]) == ("SEV3", "vacuum is held back by replication slot old")
    assert "pg_drop_replication_slot('old')" in f["next_step"]
    young = holders.iloc[[1]].reset_index(drop=True)
    assert dangers.xmin_findings(young, threshold_s=300) == []
    [s] = dangers.xmin_findings(young, threshold_s=5)
    assert s["severity"] == "SEV4" and "pids=[42]" in s["next_step"]


def test_only_a_waiting_index_build_over_the_threshold_is_a_finding():
    rows = [
        {
            "kind": "create index",
            "pid": 7,
            "relation": "t",
            "phase": "waiting for old snapshots",
            "running_s": 400.0,
        },
        {
            "kind": "create index",
            "pid": 8,
            "relation": "u",
            "phase": "building index: scanning table",
            "running_s": 900.0,
        },
        {"kind": "vacuum", "pid": 9, "relation": "v", "phase": "scanning heap", "running_s": 9e3},
    ]
    progress = dangers.progress_frame(rows)
    assert [f["pid"] for f in dangers.progress_findings(progress, threshold_s=300)] == [7]
    assert dangers.progress_findings(progress, threshold_s=600) == []


METRICS = [
    {
        "metadata": {"name": "postgres-0", "namespace": "production"},
        "containers": [
            {"name": "postgres", "usage": {"cpu": "950m", "memory": "3900Mi"}},
            {"name": "exporter", "usage": {"cpu": "5m", "memory": "20Mi"}},
        ],
    },
    {"metadata": {"name": "backend-1", "namespace": "production"}, "containers": []},
]
PODS = [
    {
        "metadata": {"name": "postgres-0", "namespace": "production"},
        "spec": {
            "containers": [
                {
                    "name": "postgres",
                    "resources": {
                        "requests": {"cpu": "500m", "memory": "2Gi"},
                        "limits": {"cpu": "1", "memory": "4Gi"},
                    },
                },
                {"name": "exporter"},
            ]
        },
    }
]


def test_db_resources_per_container_against_requests_and_limits():
    df = pods.db_resources_frame(METRICS, PODS)
    assert list(df.columns) == pods.RESOURCE_COLUMNS
    assert list(df["container"]) == ["postgres", "exporter"]  # only the database's pods
    pg = df.iloc[0]
    assert (pg["cpu_millicores"], pg["cpu_limit_millicores"], pg["cpu_pct_of_limit"]) == (
        950.0,
        1000.0,
        95.0,
    )
    assert pg["memory_bytes"] == 3900 * 2**20 and pg["memory_pct_of_limit"] == 95.2
    assert math.isnan(df.iloc[1]["memory_limit_bytes"]) and math.isnan(
        df.iloc[1]["cpu_pct_of_limit"]
    )
    titles = [f["title"] for f in pods.resource_findings(df)]
    assert titles == [
        "database container postgres-0/postgres at 95% of its memory limit",
        "database container postgres-0/postgres at 95% of its CPU limit",
    ]
    view = pods.resources_view(df)
    assert view.iloc[0][["cpu", "cpu limit", "memory", "memory limit"]].tolist() == [
        "950m",
        "1000m",
        "3900Mi",
        "4096Mi",
    ]
    assert view.iloc[1]["memory limit"] == "none"
    assert len(pods.db_resources_frame(None, None)) == 0


def _workload(kind="Deployment", resources=None, containers=None):
    return {
        "kind": kind,
        "metadata": {"name": "postgres", "namespace": "production"},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "containers": containers
                    or [
                        {"name": "sidecar", "resources": {}},
                        {"name": "postgres", "resources": resources or {}},
                    ]
                }
            },
        },
    }


def test_resources_raise_requests_and_limits_never_lower_and_leave_no_limit_unlimited():
    w = _workload(
        resources={"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    )
    plan = actions.plan_resources(w, cpu="2000m", memory="6Gi")
    [req] = plan.requests
    assert req.path == "/apis/apps/v1/namespaces/production/deployments/postgres"
    assert req.body["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "postgres",
            "resources": {
                "requests": {"cpu": "2000m", "memory": "6Gi"},
                "limits": {"memory": "6Gi"},
            },
        }
    ]
    assert "no cpu limit (unlimited, left so)" in plan.summary
    assert plan.command == (
        "kubectl set resources deployment/postgres -n production -c postgres "
        "--limits=memory=6Gi --requests=cpu=2000m,memory=6Gi"
    )
    assert "-            memory: 4Gi\n+            memory: 6Gi" in plan.change
    assert "-            cpu: '1'\n-            memory: 2Gi\n+            cpu: 2000m" in plan.change
    assert plan.rollout == req.path
    same = actions.plan_resources(w, cpu="1000m", memory="2Gi")  # the runbook's figures
    assert same.skipped == "container postgres already has at least cpu 1000m and memory 2Gi"
    assert same.requests == []


def test_resources_pick_the_container_and_refuse_an_unknown_one():
    sts = _workload(kind="StatefulSet", containers=[{"name": "db"}, {"name": "exporter"}])
    plan = actions.plan_resources(sts, cpu="1", memory="1Gi")
    assert plan.requests[0].path.endswith("/statefulsets/postgres")
    assert plan.requests[0].body["spec"]["template"]["spec"]["containers"][0]["name"] == "db"
    named = actions.plan_resources(sts, cpu="1", memory="1Gi", container="exporter")
    assert named.requests[0].body["spec"]["template"]["spec"]["containers"][0]["name"] == "exporter"
    with pytest.raises(
        InvalidParameter,
        match="container 'pg' is not in statefulset/postgres; containers: db, exporter",
    ):
        actions.plan_resources(sts, cpu="1", memory="1Gi", container="pg")


def test_a_statefulset_restart_is_waited_for_by_kubectls_rule():
    plan = actions.plan_restart(_workload(kind="StatefulSet"))
    assert plan.rollout == "/apis/apps/v1/namespaces/production/statefulsets/postgres"

    def sts(**status):
        return {
            "kind": "StatefulSet",
            "metadata": {"name": "postgres", "generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, **status},
        }

    assert actions.rollout_done(sts(readyReplicas=1)) == (
        False,
        "Waiting for 1 pods to be ready...",
    )
    assert (
        actions.rollout_done(
            sts(readyReplicas=2, updatedReplicas=1, currentRevision="a", updateRevision="b")
        )[0]
        is False
    )
    done, msg = actions.rollout_done(
        sts(readyReplicas=2, currentRevision="b", updateRevision="b", currentReplicas=2)
    )
    assert done and msg == "statefulset rolling update complete 2 pods at revision b..."
    stale = sts(readyReplicas=2)
    stale["status"]["observedGeneration"] = 1
    assert actions.rollout_done(stale) == (
        False,
        "Waiting for statefulset spec update to be observed...",
    )


def test_terminate_stale_takes_every_non_idle_session_older_than_the_threshold():
    sessions = pg_activity.sessions_frame(
        [
            session(1, "active", query_s=700),
            session(2, "idle in transaction", query_s=900, state_s=800),
            session(3, "idle in transaction (aborted)", query_s=650),
            session(4, "idle", query_s=5000),
            session(5, "active", query_s=30),
            session(6, "active", query_s=5000, self_=True),
            session(7, "active", query_s=800, backend_type="autovacuum worker"),
            session(8, "idle in transaction", query_s=600),  # exactly the threshold: taken
        ]
    )
    plan = pg_actions.plan_sessions(
        "terminate_stale", sessions=sessions, blocking=None, threshold_s=300, stale_s=600
    )
    assert [s.pid for s in plan.signals] == [2, 1, 3, 8]
    assert {s.function for s in plan.signals} == {"pg_terminate_backend"}
    assert plan.left_alone == [
        {"pid": 7, "why": "autovacuum worker: only touched when asked for by pid"}
    ]
    long_only = pg_actions.plan_sessions(
        "terminate_long", sessions=sessions, blocking=None, threshold_s=600
    )
    assert [s.pid for s in long_only.signals] == [1]  # the runbook's first form: active only
    none = pg_actions.plan_sessions(
        "terminate_stale", sessions=sessions, blocking=None, threshold_s=300, stale_s=6000
    )
    assert none.skipped == "no non-idle session older than 6000s"
    for few in (None, sessions[sessions["pid"] == 6], sessions[sessions["pid"] == 2]):
        plan = pg_actions.plan_sessions(
            "terminate_stale", sessions=few, blocking=None, threshold_s=300, stale_s=600
        )
        assert [s.pid for s in plan.signals] == (
            [2] if few is not None and 2 in set(few["pid"]) else []
        )
    for kube in ("restart", "restart_app", "resources"):
        with pytest.raises(InvalidParameter, match="not a session mitigation"):
            pg_actions.plan_sessions(kube, sessions=sessions, blocking=None, threshold_s=1)


def test_the_database_parameters_for_the_new_mitigations():
    cfg = pgdiag.Params.check({})
    assert (cfg.db_memory, cfg.db_cpu, cfg.stale_s, cfg.db_container) == ("2Gi", "1000m", 600, None)
    for name, value, message in [
        ("db_memory", "lots", "invalid db_memory 'lots': expected a Kubernetes memory quantity"),
        ("db_memory", "1Mi", "invalid db_memory '1Mi': below 4Mi"),
        ("db_cpu", "fast", "invalid db_cpu 'fast': expected a Kubernetes CPU quantity"),
        ("stale_threshold", "soon", "stale_threshold 'soon' is not a duration"),
        ("db_container", "Post Gres", "invalid db_container 'Post Gres'"),
        ("mitigation", "scale", "'scale'"),
    ]:
        with pytest.raises(InvalidParameter, match=message):
            pgdiag.Params.check({name: value})


def test_the_tables_ranked_by_size_and_by_dead_tuples():
    rows = [
        {
            "schema": "public",
            "table": "big",
            "total_bytes": 900,
            "dead_tuples": 0,
            "live_tuples": 9,
            "rank_size": 1,
            "rank_dead": 2,
            "autovacuum_count": 4,
        },
        {
            "schema": "public",
            "table": "churn",
            "total_bytes": 10,
            "dead_tuples": 50_000,
            "live_tuples": 10_000,
            "rank_size": 7,
            "rank_dead": 1,
            "autovacuum_count": 0,
        },
    ]
    df = space.tables_frame(rows)
    assert df.set_index("table").loc["churn", "dead_pct"] == 83.3
    assert df["rank_dead"].tolist() == [2, 1] and df["autovacuum_count"].dtype == "Int64"
    assert set(space.DEAD_VIEW) <= set(df.columns)


def test_triage_commands_carry_what_triage_looked_at_quoted_for_a_shell():
    cfg = triage.Params.check(
        {
            "kubeconfig": "/tmp/my kube/config",
            "dsn": "postgresql://sre:s3cret@db.internal:6432/app",
            "health_url": "https://api.example.com/health",
            "db_deployment": "pg-main",
            "since": "2h",
        }
    )
    extra = triage.command_parameters(cfg)
    assert extra["dsn"] == "host=db.internal port=6432 dbname=app user=sre"  # no password
    db = triage.run_command(
        "database", namespace="production", deployment="api", incident_id="INC-9", extra=extra
    )
    assert shlex.split(db) == [
        "runbook",
        "run",
        "database",
        "-p",
        "namespace",
        "production",
        "-p",
        "app_deployment",
        "api",
        "-p",
        "kubeconfig",
        "/tmp/my kube/config",
        "-p",
        "since",
        "2h",
        "-p",
        "dsn",
        "host=db.internal port=6432 dbname=app user=sre",
        "-p",
        "db_deployment",
        "pg-main",
        "--incident",
        "INC-9",
    ]
    outage = triage.run_command("outage", namespace="production", deployment="api", extra=extra)
    assert "health_url https://api.example.com/health" in outage and "dsn" not in outage
    assert "s3cret" not in db + outage
    plain = triage.command_parameters(triage.Params.check({}))
    assert plain == {"db_deployment": "postgres"}  # named always: the restart target is explicit
    assert triage.dsn_without_password("host=h password=x user=u") == "host=h user=u"


def test_a_database_alert_names_the_database_workload_never_the_application():
    cfg = triage.Params.check({"app_deployment": "api", "incident_id": "INC-9"})
    alerts = alerts_table(
        [
            alert_row(
                {"alertname": name, "severity": "critical", **labels},
                {},
                source="prometheus",
                state="firing",
                silenced=False,
                active_at=None,
            )
            for name, labels in (
                ("PostgresDown", {"service": "pg-main"}),
                ("PostgresTooManyConnections", {}),
            )
        ]
    )
    rows = triage.firing.alert_notebooks(alerts, namespace="production", deployment="api")
    commands = [shlex.split(triage.next_command(r, cfg)) for r in rows.to_dict("records")]
    assert [c[2] for c in commands] == ["database", "database"]
    given = [dict(zip(c[4::3], c[5::3], strict=False)) for c in commands]
    assert [(g["app_deployment"], g["db_deployment"]) for g in given] == [
        ("api", "pg-main"),  # the alert's service label: the database's own workload
        ("api", "postgres"),  # no label: the database notebook's default
    ]
    measured = {"notebook": "outage", "namespace": "production", "deployment": "api"}
    assert "-p app_deployment api" in triage.next_command(measured, cfg)


def test_frames_of_nothing_have_their_columns():
    for frame, cols in [
        (dangers.sequences_frame(None), dangers.SEQUENCE_COLUMNS),
        (dangers.invalid_indexes_frame(None), dangers.INVALID_INDEX_COLUMNS),
        (dangers.prepared_xacts_frame(None), dangers.PREPARED_XACT_COLUMNS),
        (dangers.xmin_holders_frame(None), dangers.XMIN_HOLDER_COLUMNS),
        (dangers.checkpoints_frame(None), dangers.CHECKPOINT_COLUMNS),
        (dangers.progress_frame(None), dangers.PROGRESS_COLUMNS),
        (space.slots_frame(None), space.SLOT_COLUMNS),
    ]:
        assert isinstance(frame, pd.DataFrame) and list(frame.columns) == cols and frame.empty


def test_a_lock_on_no_relation_names_its_lock_type_and_a_prepared_holder_is_named():
    from incidentlib.pg import locks

    def pair(blocked, blocking, **kw):
        row = {
            "blocked_pid": blocked,
            "blocking_pid": blocking,
            "wait_s": 8.0,
            "locktype": "virtualxid",
            "mode": "ShareLock",
            "relation": None,
            "blocked_query": "CREATE INDEX CONCURRENTLY i ON t (c)",
            "blocking_state": "idle in transaction",
            "blocking_query": "SELECT 1",
            "blocking_state_s": 9.0,
        }
        return {**row, **kw}

    frame = locks.blocking_frame([pair(20, 10), pair(30, 20, relation="t", locktype="relation")])
    tree = locks.blocking_tree(frame)
    assert "pid 20 waits 8s for ShareLock on virtualxid: CREATE INDEX" in tree and "nan" not in tree
    prepared = locks.blocking_frame(
        [pair(40, 0, blocking_state="prepared transaction", blocking_state_s=None)]
    )
    assert locks.blocking_tree(prepared).startswith("pid 0 [prepared transaction, ")
    [f] = pgdiag.blocker_findings(locks.root_blockers(prepared))
    assert f["title"] == "a prepared transaction blocks 1 session"
    assert "ROLLBACK PREPARED" in f["next_step"] and "terminate" not in f["next_step"]


def test_prefetched_reads_are_recorded_where_taken_and_a_failure_is_printed_there(capsys):
    from incidentlib.errors import DatabaseError
    from incidentlib.notebook.run import Run

    order: list[str] = []

    def ok():
        order.append("a")
        return [{"x": 1}]

    def fails():
        order.append("b")
        raise DatabaseError("b: lock_timeout expired")

    pre = pgdiag.Prefetch({"postgres: a": ok, "postgres: b": fails})
    run = Run("database")
    assert pre.take(run, "postgres: b") is None  # waits for it; its line is printed now
    assert "✗ postgres: b: b: lock_timeout expired" in capsys.readouterr().out
    assert pre.take(run, "postgres: a") == [{"x": 1}]
    pre.wait()
    assert order == ["a", "b"]  # one after the other, on the one session
    assert pre.take(run, "postgres: a") == [{"x": 1}] and order == ["a", "b", "a"]  # re-run: afresh
    assert [(s.source, s.status) for s in run.sources] == [
        ("postgres: b", "failed"),
        ("postgres: a", "ok"),
        ("postgres: a", "ok"),
    ]
    db = pgdiag.Facts(target="t")
    assert db.read(run, "postgres: sessions") is None  # no connection: skipped, said so
    assert run.sources[-1].status == "skipped"


def test_the_database_charts_are_recipes_the_chart_helper_can_draw():
    from incidentlib.notebook import charts

    charts.warm_up("database")  # what the database notebook's helper draws first
    db = pgdiag.Facts(target="t")
    specs = pgdiag.chart_specs(db)
    assert [name for name, _ in specs] == ["slow_statements", "connections", "lock_waits"]
    assert [charts.recipe_png(name, **kw) for name, kw in specs] == [b"", b"", b""]  # nothing
    summary = {"by_state": {"active": 2, "idle": 5}, "max_connections": 100, "reserved": 3}
    assert charts.recipe_png("connections", summary=summary).startswith(b"\x89PNG")
