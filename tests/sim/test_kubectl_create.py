"""`kubectl create` of the objects kubectl builds itself, which it sends as protobuf, with both real
kubectl versions: the simulated API server stores what was meant, and refuses a kind it cannot
read the way a real server refuses a body in a format it does not take (415)."""

from __future__ import annotations

import base64
import json

import pytest

from incidentlib.sim import protobuf
from incidentlib.sim.status import ApiError
from incidentlib.sim.testing import running_sim

from .test_cluster_half import KUBECTLS, run

pytestmark = [pytest.mark.sim]


def _get(kubectl: str, sim, *args: str) -> dict:
    out = run(kubectl, sim, "get", *args, "-o", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("kubectl", KUBECTLS)
def test_create_builds_what_was_asked_for(kubectl, tmp_path) -> None:
    with running_sim("healthy", workdir=tmp_path / "sim") as sim:
        ns = ["-n", "production"]
        commands = [
            ["create", "namespace", "incident-runbook"],
            ["create", "serviceaccount", "runbook", *ns],
            ["create", "configmap", "limits", *ns, "--from-literal=a=1", "--from-literal=b=two"],
            ["create", "secret", "generic", "token", *ns, "--from-literal=password=hunter2",
             "--type=example.com/token"],
            ["create", "role", "reader", *ns, "--verb=get,list", "--resource=pods,pods/log"],
            ["create", "rolebinding", "reader", *ns, "--role=reader",
             "--serviceaccount=production:runbook", "--user=alice"],
            ["create", "clusterrole", "healthz", "--verb=get", "--non-resource-url=/healthz"],
            ["create", "clusterrolebinding", "healthz", "--clusterrole=healthz", "--group=ops"],
        ]  # fmt: skip
        for args in commands:
            out = run(kubectl, sim, *args)
            assert out.returncode == 0, (args, out.stderr)
            assert out.stdout.strip().endswith(" created"), out.stdout

        assert _get(kubectl, sim, "namespace", "incident-runbook")["status"]["phase"] == "Active"
        sa = _get(kubectl, sim, "serviceaccount", "runbook", *ns)
        assert (sa["kind"], sa["metadata"]["namespace"]) == ("ServiceAccount", "production")
        assert _get(kubectl, sim, "configmap", "limits", *ns)["data"] == {"a": "1", "b": "two"}
        secret = _get(kubectl, sim, "secret", "token", *ns)
        assert secret["type"] == "example.com/token"
        assert base64.b64decode(secret["data"]["password"]) == b"hunter2"
        role = _get(kubectl, sim, "role", "reader", *ns)
        assert role["rules"] == [
            {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}
        ]
        binding = _get(kubectl, sim, "rolebinding", "reader", *ns)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "reader",
        }
        assert sorted(binding["subjects"], key=lambda s: s["kind"]) == [
            {
                "apiGroup": "",
                "kind": "ServiceAccount",
                "name": "runbook",
                "namespace": "production",
            },
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
        ]
        assert _get(kubectl, sim, "clusterrole", "healthz")["rules"] == [
            {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}
        ]
        crb = _get(kubectl, sim, "clusterrolebinding", "healthz")
        assert (crb["roleRef"]["name"], crb["subjects"]) == (
            "healthz",
            [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"}],
        )
        # the second time, the answer a real server gives (the body was read, the name is taken)
        again = run(kubectl, sim, "create", "serviceaccount", "runbook", *ns)
        assert again.returncode == 1
        assert 'serviceaccounts "runbook" already exists' in again.stderr


@pytest.mark.parametrize("kubectl", KUBECTLS)
def test_a_kind_the_sim_cannot_read_is_refused_and_nothing_is_stored(kubectl, tmp_path) -> None:
    with running_sim("healthy", workdir=tmp_path / "sim") as sim:
        out = run(kubectl, sim, "create", "deployment", "extra", "-n", "production", "--image=x")
        assert out.returncode == 1
        assert out.stderr.strip() == (
            "error: failed to create deployment: the body of the request was in an unknown "
            "format - accepted media types include: application/json, application/yaml"
        )
        gone = run(kubectl, sim, "get", "deployment", "extra", "-n", "production")
        assert 'deployments.apps "extra" not found' in gone.stderr


def _varint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _body(api_version: str, kind: str, message: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return protobuf.MAGIC + _field(1, type_meta) + _field(2, message)


def test_decode_object_reads_metadata_maps_and_refuses_what_it_cannot() -> None:
    label = _field(11, _field(1, b"app") + _field(2, b"web"))
    meta = _field(1, b"cfg") + _field(3, b"production") + label
    data = _field(2, _field(1, b"k") + _field(2, b"v"))
    assert protobuf.decode_object(_body("v1", "ConfigMap", _field(1, meta) + data)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "production", "labels": {"app": "web"}},
        "data": {"k": "v"},
    }
    # a kind it does not know, or a known kind in another group version: 415, as a real server
    for api_version, kind in (("apps/v1", "Deployment"), ("v2", "ConfigMap")):
        with pytest.raises(ApiError) as e:
            protobuf.decode_object(_body(api_version, kind, _field(1, meta)))
        assert (e.value.code, e.value.reason) == (415, "UnsupportedMediaType")
    # a body cut short is malformed (the caller answers 400), never half read
    with pytest.raises(ValueError, match="truncated"):
        protobuf.decode_object(_body("v1", "ConfigMap", _field(1, meta))[:-3])
