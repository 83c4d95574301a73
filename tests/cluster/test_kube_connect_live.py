"""`kube.connect` against the simulated cluster as kubectl would reach a real one: over TLS with the
kubeconfig's certificate authority (and refused without it), and through a $KUBECONFIG of several
files merged like kubectl's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml

from incidentlib.errors import KubeAPIError, KubeConfigError
from incidentlib.kube import client as kube

pytestmark = pytest.mark.sim


def test_tls_with_the_kubeconfigs_ca_verifies_and_reads(sim_cluster: Any) -> None:
    sim = sim_cluster("healthy", tls=True)
    c = kube.connect(kubeconfig=str(sim.kubeconfig))
    try:
        assert c.server.startswith("https://127.0.0.1:") and c.context == "sim"
        assert c.server_version().startswith("v1.")
        names = [n["metadata"]["name"] for n in c.get_json("/api/v1/namespaces")["items"]]
        assert "production" in names
    finally:
        c.close()


def test_tls_without_the_ca_is_refused_not_trusted(sim_cluster: Any, tmp_path: Path) -> None:
    sim = sim_cluster("healthy", tls=True)
    doc = yaml.safe_load(Path(sim.kubeconfig).read_text())
    del doc["clusters"][0]["cluster"]["certificate-authority-data"]
    bare = tmp_path / "no-ca.yaml"
    bare.write_text(yaml.safe_dump(doc))
    c = kube.connect(kubeconfig=str(bare))
    try:
        with pytest.raises(KubeAPIError, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            c.get_json("/api/v1/namespaces", timeout=5)
    finally:
        c.close()
    # asked not to verify (kubectl --insecure-skip-tls-verify), it reads, with urllib3's warning
    c = kube.connect(kubeconfig=str(bare), verify_ssl=False)
    try:
        with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            assert c.server_version().startswith("v1.")
    finally:
        c.close()


def test_a_multi_path_kubeconfig_is_merged_like_kubectl(
    sim_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = sim_cluster("healthy")
    other = tmp_path / "other.yaml"
    other.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "far", "cluster": {"server": "http://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "far", "context": {"cluster": "far", "user": "u"}}],
            }
        )
    )
    # the first file has no current-context: the second one's (sim) is used, as kubectl does
    monkeypatch.setenv("KUBECONFIG", f"{other}:{sim.kubeconfig}")
    c = kube.connect()
    try:
        assert c.context == "sim" and c.server_version().startswith("v1.")
    finally:
        c.close()
    c = kube.connect(context="far")  # a context of the first file
    try:
        assert c.context == "far" and c.server == "http://127.0.0.1:1"
    finally:
        c.close()
    with pytest.raises(KubeConfigError, match=r"context 'nope' is not in kubeconfig .*far, sim"):
        kube.connect(context="nope")
    # an explicit multi-path argument whose part is missing names that part
    with pytest.raises(KubeConfigError, match=r"kubeconfig '.*missing.yaml' cannot be read: no"):
        kube.connect(kubeconfig=f"{sim.kubeconfig}:{tmp_path / 'missing.yaml'}")
