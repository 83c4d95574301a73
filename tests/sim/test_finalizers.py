"""Deletion with finalizers, as a real API server does it: the object stays, marked, until they are
gone."""

import json

import pytest

from incidentlib.kube import client as kube
from incidentlib.kube.podstatus import pod_row

pytestmark = pytest.mark.sim


def test_pod_with_finalizer_is_terminating_until_the_finalizer_is_removed(sim_cluster):
    sim = sim_cluster("healthy")
    c = kube.connect(kubeconfig=str(sim.kubeconfig))
    path = "/api/v1/namespaces/production/pods"
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "held", "labels": {"app": "held"}, "finalizers": ["example.com/hold"]},
        "spec": {"containers": [{"name": "c", "image": "registry.example.com/held:1"}]},
    }
    c.write_json("POST", path, body)
    deleted = c.write_json("DELETE", f"{path}/held", {})
    assert deleted["metadata"]["deletionTimestamp"]
    pod = c.get_json(f"{path}/held")
    assert pod["metadata"]["deletionTimestamp"] == deleted["metadata"]["deletionTimestamp"]
    assert pod_row(pod).status == "Terminating"
    out = sim.kubectl("get", "pod", "held", "-n", "production", "--no-headers")
    assert out.returncode == 0 and "Terminating" in out.stdout
    c.write_json(
        "PATCH",
        f"{path}/held",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    gone = sim.kubectl("get", "pod", "held", "-n", "production")
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    assert json.dumps(c.get_json(path)).count('"held"') == 0
