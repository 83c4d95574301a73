"""The metrics API sampled at its own resolution, against the simulated cluster: a poll that repeats
the last measurement (the same `timestamp`s) is dropped, and waiting stops at its budget."""

from __future__ import annotations

import pytest

from incidentlib.kube import client as kube
from incidentlib.kube import metrics, reads

pytestmark = pytest.mark.sim


def test_repeated_measurements_are_dropped_and_the_wait_is_bounded(sim_cluster) -> None:
    sim = sim_cluster("healthy")
    cluster = kube.connect(kubeconfig=str(sim.kubeconfig))
    sim.clear_requests()
    # the sim's metrics carry a timestamp to the second: polls 0.25 s apart repeat it
    got = reads.sample_pods(cluster, "production", samples=50, interval_s=0.25, max_wait_s=1.3)
    polls = [r for r in sim.requests() if r["path"].startswith("/apis/metrics.k8s.io/")]
    stamps = [tuple(sorted(m["timestamp"] for m in items)) for _, items in got]
    assert 4 <= len(polls) <= 7 and 1 <= len(got) <= 3 and len(got) < len(polls)
    assert len(set(stamps)) == len(stamps)  # each sample a measurement of its own
    series = metrics.container_series(got)
    assert series.groupby(["pod", "container"])["time"].nunique().max() == len(got)
    assert metrics.short_run_note(series, resolution_s=reads.metrics_resolution(got[0][1]))
    # asked for two, it stops as soon as the API has measured twice
    two = reads.sample_pods(cluster, "production", samples=2, interval_s=0.4)
    assert len(two) == 2


def test_the_resolution_is_the_window_the_api_reports() -> None:
    assert reads.metrics_resolution([{"window": "20.003s"}]) == pytest.approx(20.003)
    assert reads.metrics_resolution([{"window": "1m0s"}]) == 60.0
    assert reads.metrics_resolution([{}, {"window": "bogus"}]) == reads.METRICS_RESOLUTION_S
