"""Connection like kubectl: explicit path, $KUBECONFIG, ~/.kube/config; clear errors naming what
exists."""

import pytest

from incidentlib.errors import KubeAPIError, KubeConfigError
from incidentlib.kube.client import connect, resolve_kubeconfig

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster: {server: "http://127.0.0.1:1"}
- name: c2
  cluster: {server: "http://127.0.0.1:2"}
contexts:
- name: staging
  context: {cluster: c1, user: u}
- name: prod-eu
  context: {cluster: c2, user: u}
current-context: staging
users:
- name: u
  user: {token: abc}
"""


@pytest.fixture
def kubeconfig(tmp_path):
    p = tmp_path / "config"
    p.write_text(KUBECONFIG)
    return p


def test_explicit_path_and_context(kubeconfig):
    c = connect(kubeconfig=str(kubeconfig), context="prod-eu")
    assert c.context == "prod-eu" and c.server == "http://127.0.0.1:2"
    c = connect(kubeconfig=str(kubeconfig))
    assert c.context == "staging" and c.server == "http://127.0.0.1:1"


def test_kubeconfig_env_is_used(kubeconfig, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert resolve_kubeconfig() == str(kubeconfig)
    assert connect().context == "staging"


def test_home_kube_config_is_the_fallback(kubeconfig, monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    (tmp_path / ".kube" / "config").write_text(KUBECONFIG)
    assert connect().server == "http://127.0.0.1:1"


def test_no_kubeconfig_anywhere(monkeypatch, tmp_path):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeConfigError, match="no kubeconfig found"):
        connect()


def test_unknown_context_names_the_existing_ones(kubeconfig):
    with pytest.raises(KubeConfigError) as e:
        connect(kubeconfig=str(kubeconfig), context="prod")
    assert "'prod'" in str(e.value) and "staging, prod-eu" in str(e.value)


def test_unreadable_kubeconfig(tmp_path):
    with pytest.raises(KubeConfigError, match="cannot be read: no such file"):
        connect(kubeconfig=str(tmp_path / "missing"))
    bad = tmp_path / "bad"
    bad.write_text("{not: [yaml")
    with pytest.raises(KubeConfigError, match="bad"):
        connect(kubeconfig=str(bad))


def test_unreachable_api_is_a_clear_error(kubeconfig):
    c = connect(kubeconfig=str(kubeconfig))
    with pytest.raises(KubeAPIError, match="cannot reach the Kubernetes API at http://127.0.0.1:1"):
        c.get_json("/version", timeout=2)
