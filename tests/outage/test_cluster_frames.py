"""Pure frame builders of incidentlib.kube.frames on JSON fixtures (nothing started)."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from incidentlib.kube import frames as cl
from incidentlib.kube import owners
from incidentlib.quantity import cpu_millicores, memory_bytes
from incidentlib.service import git

from .api_payloads import (
    DEPLOYMENT,
    EVENTS,
    NODE_METRICS,
    NODES,
    NOW,
    POD_METRICS,
    PODS,
    REPLICASETS,
    at,
    pending_pod,
)


def test_pods_frame_columns_and_crashloop_values() -> None:
    df = cl.pods_frame(PODS, now=NOW, replicasets=REPLICASETS)
    assert list(df.columns) == cl.POD_COLUMNS
    p1 = df.set_index("name").loc["backend-ccc333-p1"]
    assert (p1["status"], p1["ready"], p1["restarts"], p1["exit_code"]) == (
        "CrashLoopBackOff",
        "0/1",
        7,
        1,
    )
    assert (p1["owner"], p1["owner_kind"], p1["last_termination_reason"]) == (
        "backend",
        "Deployment",
        "Error",
    )
    assert p1["waiting_reason"] == "CrashLoopBackOff" and "back-off" in p1["waiting_message"]
    assert p1["last_restart"] == pd.Timestamp(at(2))
    assert (p1["ip"], p1["node"], p1["age"]) == ("10.244.1.5", "node-1", "10m")
    fe = df.set_index("name").loc["frontend-fff000-a"]
    assert (fe["owner"], fe["status"], fe["ready"], fe["age"]) == (
        "frontend",
        "Running",
        "1/1",
        "3d",
    )
    assert str(df["exit_code"].dtype) == "Int64" and pd.isna(fe["exit_code"])


def test_unhealthy_pods_are_the_not_running_ones() -> None:
    df = cl.pods_frame(
        PODS + [pending_pod("big", "0/3 nodes are available: 3 Insufficient memory.")], now=NOW
    )
    bad = cl.unhealthy_pods(df)
    assert sorted(bad["name"]) == [
        "backend-ccc333-p1",
        "backend-ccc333-p2",
        "backend-ccc333-p3",
        "big",
    ]
    assert bad.iloc[0]["name"] == "backend-ccc333-p3"  # most restarts first


def test_classify_pending_messages() -> None:
    assert cl.classify_pending("0/3 nodes are available: 3 Insufficient memory.") == [
        "insufficient memory"
    ]
    assert cl.classify_pending(
        "0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient memory."
    ) == ["insufficient cpu", "insufficient memory"]
    assert cl.classify_pending(
        "0/3 nodes are available: 3 node(s) had untolerated taint "
        "{node.kubernetes.io/disk-pressure: }."
    ) == ["taint"]
    assert cl.classify_pending(
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    ) == ["affinity"]
    assert cl.classify_pending(
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    ) == ["unbound volume"]
    assert cl.classify_pending(None) == []


def test_pending_frame_uses_condition_or_event() -> None:
    pods = [
        pending_pod("big", "0/3 nodes are available: 3 Insufficient memory."),
        {
            "metadata": {"name": "gated", "namespace": "production", "uid": "g"},
            "spec": {"containers": []},
            "status": {"phase": "Pending"},
        },
    ]
    events = [
        {
            "metadata": {"namespace": "production"},
            "involvedObject": {"kind": "Pod", "name": "gated"},
            "reason": "FailedScheduling",
            "type": "Warning",
            "message": "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: db}.",
            "lastTimestamp": at(1),
        }
    ]
    df = cl.pending_frame(pods, events).set_index("name")
    assert df.loc["big", "reasons"] == "insufficient memory"
    assert df.loc["gated", "reasons"] == "taint"


def test_pod_details_like_describe() -> None:
    d = cl.pod_details(PODS[0], EVENTS, previous_log="FATAL boom", now=NOW)
    assert d["status"] == "CrashLoopBackOff" and d["restarts"] == 7
    c = d["containers"].iloc[0]
    assert c["state"].startswith("Waiting, reason=CrashLoopBackOff")
    assert "Terminated, reason=Error, exit code=1" in c["last_state"]
    assert list(d["events"]["reason"]) == ["BackOff", "Pulled"]
    assert d["events"].iloc[0]["count"] == 15  # two BackOff records grouped
    assert set(d["conditions"]["type"]) == {"Ready", "Initialized"}


def test_nodes_frame_requests_and_conditions() -> None:
    df = cl.nodes_frame(NODES, PODS, now=NOW).set_index("name")
    assert list(df.reset_index().columns) == cl.NODE_COLUMNS
    assert df.loc["node-1", "roles"] == "control-plane" and df.loc["node-2", "roles"] == "<none>"
    assert df.loc["node-2", "pressure"] == "MemoryPressure"
    assert df.loc["node-3", "status"] == "NotReady"
    # node-1 runs backend p1 (250m, 256Mi) and the frontend (100m, 128Mi)
    assert df.loc["node-1", "cpu_requested_m"] == 350.0 and df.loc["node-1", "pods"] == 2
    assert df.loc["node-1", "cpu_requested_pct"] == 8.8
    assert df.loc["node-1", "memory_requested"] == 384 * 2**20
    assert df.loc["node-1", "version"] == "v1.32.0" and df.loc["node-1", "age"] == "30d"


def test_events_grouped_warnings_first_within_since() -> None:
    df = cl.events_frame(EVENTS, since=timedelta(minutes=30), now=NOW)
    assert list(df.columns) == cl.EVENT_COLUMNS
    assert list(df["type"]) == ["Warning", "Warning", "Normal", "Normal"]
    first = df.iloc[0]
    assert (first["object"], first["count"]) == ("pod/backend-ccc333-p1", 15)
    assert first["first_seen"] == pd.Timestamp(at(8))
    assert "old news" not in set(df["message"])


def test_rollouts_follow_the_owner_uid_rule() -> None:
    df = cl.rollouts_frame(DEPLOYMENT, REPLICASETS)
    assert list(df.columns) == cl.ROLLOUT_COLUMNS
    assert list(df["revision"]) == [1, 2, 3]
    assert list(df["current"]) == [False, False, True]
    assert df.iloc[2]["images"] == "registry.example.com/backend:2.4.0"
    assert df.iloc[1]["change_cause"] == "deploy backend 2.3.1"
    diff = cl.image_diff(df)
    assert diff.iloc[0][["from_revision", "to_revision", "from_image", "to_image"]].tolist() == [
        2,
        3,
        "registry.example.com/backend:2.3.1",
        "registry.example.com/backend:2.4.0",
    ]


def test_correlation_sentence_names_revision_and_rollback() -> None:
    pods = cl.pods_frame(PODS, now=NOW, replicasets=REPLICASETS)
    c = cl.correlate(
        cl.rollouts_frame(DEPLOYMENT, REPLICASETS), pods, deployment="backend", now=NOW
    )
    assert c is not None
    assert (c["revision"], c["previous"], c["exit_codes"]) == (3, 2, [1])
    rolled = pd.Timestamp(at(10)).strftime("%H:%M")
    first = pd.Timestamp(at(2)).strftime("%H:%M")
    assert c["sentence"] == (
        f"revision 3 (image registry.example.com/backend:2.4.0) rolled out at {rolled}; every pod "
        "of it has "
        f"crash-looped since {first} with exit code 1; revision 2 ran 3 days with no restarts on "
        "record: roll back"
    )


def test_no_correlation_when_current_revision_is_healthy() -> None:
    pods = cl.pods_frame([p for p in PODS if p["metadata"]["name"].startswith("frontend")], now=NOW)
    assert (
        cl.correlate(cl.rollouts_frame(DEPLOYMENT, REPLICASETS), pods, deployment="backend") is None
    )


def test_top_frames_against_requests_and_limits() -> None:
    top = cl.top_pods_frame(POD_METRICS, PODS).set_index("name")
    assert top.loc["backend-ccc333-p1", "memory"] == 480 * 2**20
    assert top.loc["backend-ccc333-p1", "memory_pct_of_limit"] == 93.8
    assert top.loc["frontend-fff000-a", "cpu_m"] == 120.0
    assert pd.isna(top.loc["frontend-fff000-a", "memory_limit"])
    nodes = cl.top_nodes_frame(NODE_METRICS, NODES).set_index("name")
    assert (nodes.loc["node-1", "cpu_pct"], nodes.loc["node-1", "memory_pct"]) == (25.0, 50.0)


def test_log_frame_marks_error_lines() -> None:
    df = cl.log_frame(
        "INFO ok\nERROR upstream backend: connection refused\n\nFATAL: config missing\n", pod="p"
    )
    assert list(df["is_error"]) == [False, True, True]


def test_pick_log_pod_prefers_ready() -> None:
    assert owners.pick_log_pod(PODS, owner="frontend")["metadata"]["name"] == "frontend-fff000-a"
    assert owners.pick_log_pod(PODS, owner="backend", replicasets=REPLICASETS)["metadata"][
        "name"
    ].startswith("backend-")
    assert owners.pick_log_pod(PODS, owner="nothing") is None


def test_quantities() -> None:
    assert (
        cpu_millicores("250m") == 250.0
        and cpu_millicores("2") == 2000.0
        and cpu_millicores("1500000n") == 1.5
    )
    assert (
        memory_bytes("512Mi") == 512 * 2**20
        and memory_bytes("1G") == 1e9
        and memory_bytes("1e3") == 1000.0
    )
    assert memory_bytes("lots") is None


def test_git_log_of_a_real_repo(tmp_path) -> None:
    import subprocess

    env = {
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@x",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@x",
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
    }
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    for msg in ("first", "bump backend to 2.4.0"):
        subprocess.run(
            ["git", "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", msg],
            check=True,
            env=env,
        )
    df = git.git_log(tmp_path)
    assert list(df["subject"]) == ["bump backend to 2.4.0", "first"]
    assert len(df["commit"].iloc[0]) >= 7


def test_correlation_first_failure_from_warning_events() -> None:
    pods = cl.pods_frame(PODS, now=NOW, replicasets=REPLICASETS)
    events = cl.events_frame(EVENTS, since=None, now=NOW)
    c = cl.correlate(
        cl.rollouts_frame(DEPLOYMENT, REPLICASETS),
        pods,
        deployment="backend",
        events=events,
        now=NOW,
    )
    assert c["first_failure"] == pd.Timestamp(at(8))  # the first BackOff, before the last restarts
    assert f"crash-looped since {pd.Timestamp(at(8)).strftime('%H:%M')}" in c["sentence"]


def test_correlation_counts_restarts_of_the_previous_revision_pods() -> None:
    import copy

    old = copy.deepcopy(PODS[3])
    old["metadata"].update(
        name="backend-bbb222-old",
        labels={"app": "backend", "pod-template-hash": "bbb222"},
        ownerReferences=[{"kind": "ReplicaSet", "name": "backend-bbb222", "controller": True}],
    )
    pods = cl.pods_frame(PODS + [old], now=NOW, replicasets=REPLICASETS)
    c = cl.correlate(
        cl.rollouts_frame(DEPLOYMENT, REPLICASETS), pods, deployment="backend", now=NOW
    )
    assert c["sentence"].endswith("revision 2 ran 3 days without restarts: roll back")
    assert c["failing_pods"] == 3 and c["pods"] == 3  # the old pod is not counted as revision 3's


def test_default_container_like_kubectl_logs() -> None:
    pod = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/default-container": "app"}},
        "spec": {"containers": [{"name": "proxy"}, {"name": "app"}]},
    }
    assert owners.default_container(pod) == "app"
    pod["metadata"]["annotations"] = {}
    assert owners.default_container(pod) == "proxy"
    assert owners.default_container({"spec": {}}) is None
