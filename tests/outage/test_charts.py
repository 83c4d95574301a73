"""Charts from fixture frames: what they draw, and that they stay small."""

from __future__ import annotations

import io
from datetime import timedelta

import pandas as pd

from incidentlib.kube import frames as cl
from incidentlib.notebook import charts

from .api_payloads import DEPLOYMENT, EVENTS, NOW, PODS, REPLICASETS


def _png_size(fig) -> int:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return len(buf.getvalue())


def test_pods_by_status_stacks_each_owner() -> None:
    pods = cl.pods_frame(PODS, now=NOW, replicasets=REPLICASETS)
    fig = charts.pods_by_status(pods)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == ["CrashLoopBackOff", "Running"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "frontend",
        "backend",
    ]  # failing owner on top
    widths = {(p.get_y(), round(p.get_width())) for p in ax.patches if p.get_width() > 0}
    assert sorted(w for _, w in widths) == [1, 3]
    assert tuple(fig.get_size_inches()) == (8, 3) and fig.dpi == 80
    assert _png_size(fig) < 60_000


def test_timeline_lanes_within_window() -> None:
    pods = cl.pods_frame(PODS, now=NOW, replicasets=REPLICASETS)
    events = cl.events_frame(EVENTS, since=None, now=NOW)
    frame = charts.timeline_frame(
        rollouts=cl.rollouts_frame(DEPLOYMENT, REPLICASETS),
        pods=pods,
        events=events,
        deployment="backend",
        since=timedelta(minutes=30),
        now=NOW,
    )
    lanes = frame.groupby("lane").size().to_dict()
    # revision 3 in the window; revisions 1-2 before it, dropped; 3 restarting pods; 2 grouped
    # BackOff warnings
    assert lanes == {"rollout": 1, "restart": 3, "first failure": 2, "warning": 2}
    assert frame.iloc[0]["lane"] == "rollout" and frame.iloc[0]["label"].startswith("rev 3")
    assert frame["time"].is_monotonic_increasing
    fig = charts.timeline(frame)
    assert len(fig.axes[0].collections) == 4
    assert _png_size(fig) < 60_000


def test_empty_inputs_still_draw() -> None:
    assert (
        charts.pods_by_status(pd.DataFrame(columns=cl.POD_COLUMNS)).axes[0].texts[0].get_text()
        == "no pods"
    )
    empty = pd.DataFrame(columns=["time", "lane", "label", "count"])
    assert charts.timeline(empty).axes[0].texts[0].get_text() == "nothing happened in the window"


def test_timeline_keeps_the_last_rollout_before_a_quiet_window() -> None:
    rollouts = cl.rollouts_frame(DEPLOYMENT, REPLICASETS[:2])  # revisions 1 and 2, days ago
    frame = charts.timeline_frame(
        rollouts=rollouts,
        pods=pd.DataFrame(columns=cl.POD_COLUMNS),
        events=pd.DataFrame(columns=cl.EVENT_COLUMNS),
        since=timedelta(minutes=30),
        now=NOW,
    )
    assert list(frame["label"]) == ["rev 2: registry.example.com/backend:2.3.1"]


def test_timeline_order_at_equal_times_and_missing_times() -> None:
    t = pd.Timestamp("2026-12-02T10:00:00Z")
    rollouts = pd.DataFrame(
        {"revision": [3, 4], "images": ["app:3", "app:4"], "created": [t, pd.NaT]}
    )
    pods = pd.DataFrame(
        {
            "owner": ["backend", "backend", "other"],
            "name": ["backend-a", "backend-b", "other-a"],
            "restarts": [2, 0, 5],
            "last_restart": [t, t, t],
        }
    )
    events = pd.DataFrame(
        {
            "type": ["Warning", "Normal", "Warning", "Warning"],
            "reason": ["BackOff", "Pulled", "Unhealthy", "Failed"],
            "object": ["pod/backend-a", "pod/backend-a", "pod/backend-b", "pod/backend-b"],
            "count": [7, 1, 2, 1],
            "first_seen": [t, t, pd.NaT, t - pd.Timedelta(minutes=5)],
            "last_seen": [t, t, t, pd.NaT],
        }
    )
    frame = charts.timeline_frame(
        rollouts=rollouts, pods=pods, events=events, deployment="backend", now=t
    )
    assert list(zip(frame["lane"], frame["label"], frame["count"], strict=True)) == [
        ("first failure", "Failed pod/backend-b", 1),  # five minutes earlier
        ("rollout", "rev 3: app:3", 1),  # then, at the same time: the rollout (rev 4 has no time),
        ("restart", "backend-a (2)", 2),  # the restarts of the deployment's pods,
        ("first failure", "BackOff pod/backend-a", 7),  # each warning's first failure
        ("warning", "BackOff pod/backend-a", 7),  # before its last warning, in the events' order
        ("warning", "Unhealthy pod/backend-b", 2),
    ]
    assert str(frame["time"].dt.tz) == "UTC"
