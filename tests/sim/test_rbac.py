"""The simulated cluster's authentication and RBAC, held to what the real API server answers: the
403 message of responsewriters.Forbidden (named, listed, subresource, API group, cluster scope,
non-resource path), 401 for tokens it did not issue, ServiceAccount tokens from the TokenRequest
API (`kubectl create token`), RoleBindings scoped to their namespace, resourceNames, `*/scale`,
SelfSubjectAccessReview's reasons, and the request log's user and status."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest

from incidentlib.sim.identity import ADMIN_TOKEN

pytestmark = [pytest.mark.sim]

SA = "system:serviceaccount:tools:reader"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


class Client:
    def __init__(self, sim: Any, token: str | None) -> None:
        self.sim, self.token = sim, token
        self.ctx = ssl.create_default_context(cafile=str(sim.ca))

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.sim.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ctx) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from incidentlib.sim import start

    sim = start("healthy", workdir=tmp_path_factory.mktemp("rbac"), tls=True)
    admin = Client(sim, ADMIN_TOKEN)
    for doc in (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tools"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}},
    ):
        path = "/api/v1/namespaces" + (
            "/tools/serviceaccounts" if doc["kind"] != "Namespace" else ""
        )
        assert admin.call("POST", path, doc)[0] == 201
    role = {
        "metadata": {"name": "reader"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app-config"],
             "verbs": ["get"]},
            {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["get"]},
        ],
    }  # fmt: skip
    assert admin.call("POST", f"{RBAC}/clusterroles", role)[0] == 201
    binding = {
        "metadata": {"name": "reader", "namespace": "production"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "reader",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "tools"}],
    }
    assert admin.call("POST", f"{RBAC}/namespaces/production/rolebindings", binding)[0] == 201
    status, answer = admin.call(
        "POST", "/api/v1/namespaces/tools/serviceaccounts/reader/token", {"spec": {}}
    )
    assert status == 201, answer
    yield sim, admin, Client(sim, answer["status"]["token"]), answer
    sim.stop()


def test_a_token_request_issues_a_token_for_the_service_account(cluster) -> None:
    sim, admin, sa, answer = cluster
    assert answer["kind"] == "TokenRequest" and answer["spec"]["expirationSeconds"] == 3600
    status, who = sa.call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {"spec": {}})
    assert status == 201 and who["status"]["userInfo"]["username"] == SA
    assert set(who["status"]["userInfo"]["groups"]) >= {
        "system:serviceaccounts",
        "system:serviceaccounts:tools",
        "system:authenticated",
    }
    status, short = admin.call(
        "POST",
        "/api/v1/namespaces/tools/serviceaccounts/reader/token",
        {"spec": {"expirationSeconds": 60}},
    )
    assert status == 422 and "spec.expirationSeconds" in short["message"]
    status, missing = admin.call(
        "POST", "/api/v1/namespaces/tools/serviceaccounts/nobody/token", {"spec": {}}
    )
    assert (status, missing["message"]) == (404, 'serviceaccounts "nobody" not found')


def test_unknown_tokens_are_401_and_no_token_is_anonymous(cluster) -> None:
    sim = cluster[0]
    status, body = Client(sim, "not-a-token").call("GET", "/api/v1/namespaces/production/pods")
    assert (status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")
    status, body = Client(sim, None).call("GET", "/api/v1/namespaces/production/pods")
    assert status == 403 and body["message"] == (
        'pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" '
        'in the namespace "production"'
    )


@pytest.mark.parametrize(
    ("path", "message", "details"),
    [
        (
            "/api/v1/namespaces/production/pods/frontend-0",
            None,  # allowed: it exists or not, the answer is not a 403
            None,
        ),
        (
            "/api/v1/namespaces/staging/pods",
            'pods is forbidden: User "{SA}" cannot list resource "pods" in API group "" in the '
            'namespace "staging"',
            {"group": "", "kind": "pods"},
        ),
        (
            "/api/v1/namespaces/production/pods/x/log",
            'pods "x" is forbidden: User "{SA}" cannot get resource "pods/log" in API group "" in '
            'the namespace "production"',
            {"group": "", "kind": "pods", "name": "x"},
        ),
        (
            "/apis/apps/v1/namespaces/production/deployments/backend",
            'deployments.apps "backend" is forbidden: User "{SA}" cannot get resource '
            '"deployments" in API group "apps" in the namespace "production"',
            {"group": "apps", "kind": "deployments", "name": "backend"},
        ),
        (
            "/api/v1/nodes",
            'nodes is forbidden: User "{SA}" cannot list resource "nodes" in API group "" at the '
            "cluster scope",
            {"group": "", "kind": "nodes"},
        ),
        (
            "/api/v1/namespaces/production/configmaps/other",
            'configmaps "other" is forbidden: User "{SA}" cannot get resource "configmaps" in API '
            'group "" in the namespace "production"',
            {"group": "", "kind": "configmaps", "name": "other"},
        ),
        ("/logs/", 'forbidden: User "{SA}" cannot get path "/logs/"', None),
    ],
)
def test_the_403_is_the_api_servers_message(cluster, path, message, details) -> None:
    status, body = cluster[2].call("GET", path)
    if message is None:
        assert status in (200, 404), body
        return
    assert status == 403 and body["reason"] == "Forbidden" and body["code"] == 403
    assert body["message"] == message.format(SA=SA)
    if details is not None:
        assert body["details"] == details


def test_resource_names_and_subresource_wildcards_allow_exactly_what_they_say(cluster) -> None:
    sa = cluster[2]
    assert sa.call("GET", "/api/v1/namespaces/production/configmaps/app-config")[0] in (200, 404)
    status, body = sa.call("GET", "/api/v1/namespaces/production/configmaps")
    assert status == 403  # a list has no name: resourceNames never allows it
    status, _ = sa.call("GET", "/apis/apps/v1/namespaces/production/deployments/backend/scale")
    assert status in (200, 404)  # "*/scale" in apps
    status, body = sa.call("PATCH", "/apis/apps/v1/namespaces/production/deployments/backend")
    assert status == 403 and 'cannot patch resource "deployments"' in body["message"]


def test_access_reviews_answer_as_the_authorizer_with_its_reasons(cluster) -> None:
    sa = cluster[2]

    def review(attrs: dict) -> dict:
        status, body = sa.call(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {"spec": {"resourceAttributes": attrs}},
        )
        assert status == 201, body
        return body["status"]

    allowed = review({"namespace": "production", "verb": "list", "resource": "pods"})
    assert allowed == {
        "allowed": True,
        "reason": 'RBAC: allowed by RoleBinding "reader/production" of ClusterRole "reader" to '
        'ServiceAccount "reader/tools"',
    }
    assert review({"namespace": "staging", "verb": "list", "resource": "pods"}) == {
        "allowed": False
    }
    exec_ = {"namespace": "production", "verb": "create", "resource": "pods", "subresource": "exec"}
    assert review(exec_) == {"allowed": False}
    admin = cluster[1]
    dangling = {
        "metadata": {"name": "gone", "namespace": "tools"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gone"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "tools"}],
    }
    assert admin.call("POST", f"{RBAC}/namespaces/tools/rolebindings", dangling)[0] == 201
    assert review({"namespace": "tools", "verb": "list", "resource": "pods"}) == {
        "allowed": False,
        "reason": 'RBAC: role.rbac.authorization.k8s.io "gone" not found',
    }


def test_the_request_log_names_the_identity_and_the_status(cluster) -> None:
    sim, admin, sa, _ = cluster
    sim.clear_requests()
    sa.call("GET", "/api/v1/namespaces/production/pods")
    sa.call("GET", "/api/v1/nodes")
    Client(sim, "bogus").call("GET", "/api/v1/nodes")
    admin.call("GET", "/api/v1/nodes")
    log = [(r["method"], r["path"], r["user"], r["status"]) for r in sim.requests()]
    assert log == [
        ("GET", "/api/v1/namespaces/production/pods", SA, 200),
        ("GET", "/api/v1/nodes", SA, 403),
        ("GET", "/api/v1/nodes", None, 401),
        ("GET", "/api/v1/nodes", "kubernetes-admin", 200),
    ]
