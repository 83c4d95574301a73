"""Authorization as the API server does it: a request's attributes read from its path (a port of
k8s.io/apiserver's RequestInfoFactory), then the authorizers in turn: the `system:masters` group
(always allowed), the staged restrictions of `start(forbidden_namespaces=...,
forbidden_resources=...)` for the kubeconfig's identity, and RBAC over the Roles, ClusterRoles
and their bindings in the store (a port of plugin/pkg/auth/authorizer/rbac: verbs, API groups,
resources, `*/subresource`, resourceNames, non-resource URLs; aggregated ClusterRoles are not
evaluated).

A denial answers 403 with the real server's message (responsewriters.forbiddenMessage):

    pods "x" is forbidden: User "system:serviceaccount:ns:sa" cannot get resource "pods" in API
    group "" in the namespace "production"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import resources
from .identity import MASTERS, STAGED_USER, UserInfo
from .status import ApiError

if TYPE_CHECKING:
    from .cluster import Cluster

GROUP = "rbac.authorization.k8s.io"
ROLES, CLUSTER_ROLES = f"{GROUP}/roles", f"{GROUP}/clusterroles"
ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS = f"{GROUP}/rolebindings", f"{GROUP}/clusterrolebindings"
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class Attributes:
    """What an authorizer sees of a request (authorizer.Attributes)."""

    user: UserInfo
    verb: str
    path: str = ""
    resource_request: bool = False
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""

    def with_verb(self, verb: str) -> Attributes:
        return Attributes(**{**self.__dict__, "verb": verb})


def request_attributes(user: UserInfo, method: str, path: str, query: dict[str, str]) -> Attributes:
    """The attributes of one request, read from its method, path and query alone (before anything
    knows whether the resource exists), as RequestInfoFactory.NewRequestInfo reads them."""
    parts = [p for p in path.strip("/").split("/") if p]
    plain = Attributes(user=user, verb=method.lower(), path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return plain
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return plain
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    verb = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch"}.get(
        method, "delete" if method == "DELETE" else ""
    )
    namespace = ""
    if parts and parts[0] == "namespaces":
        if len(parts) > 1:
            namespace = parts[1]
            if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
                parts = parts[2:]
    resource = parts[0] if parts else ""
    name = parts[1] if len(parts) >= 2 else ""
    sub = parts[2] if len(parts) >= 3 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch") in ("1", "t", "T", "true", "True", "TRUE") else "list"
        selector = query.get("fieldSelector") or ""
        if selector.startswith("metadata.name=") and "," not in selector:
            name = selector.split("=", 1)[1]
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        user=user,
        verb=verb,
        path=path,
        resource_request=True,
        group=group,
        version=version,
        resource=resource,
        subresource=sub,
        name=name,
        namespace=namespace,
    )


# ------------------------------------------------------------------------------------- the rules
def _has(values: list[str] | None, wanted: str) -> bool:
    return bool(values) and ("*" in values or wanted in values)  # type: ignore[operator]


def rule_allows(a: Attributes, rule: dict) -> bool:
    """One PolicyRule against a request (rbac.RuleAllows)."""
    if not _has(rule.get("verbs"), a.verb):
        return False
    if not a.resource_request:
        urls = rule.get("nonResourceURLs") or []
        return any(
            u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1])) for u in urls
        )
    if not _has(rule.get("apiGroups"), a.group):
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    matched = False
    for r in rule.get("resources") or []:
        if r == "*" or r == combined or (a.subresource and r == f"*/{a.subresource}"):
            matched = True
            break
    if not matched:
        return False
    names = rule.get("resourceNames") or []
    return not names or a.name in names


def _subject_matches(subject: dict, user: UserInfo, binding_ns: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user.name
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user.name == f"system:serviceaccount:{ns}:{subject.get('name')}"
    return False


@dataclass
class _Visit:
    """What walking the bindings found: the rules that apply, why, and the missing roles."""

    rules: list[tuple[dict, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _role_rules(cluster: Cluster, ref: dict, binding_ns: str) -> tuple[list[dict] | None, str]:
    kind, name = ref.get("kind"), ref.get("name", "")
    if kind == "ClusterRole":
        entry = cluster.store.get(CLUSTER_ROLES, "", name)
        missing = f'clusterrole.rbac.authorization.k8s.io "{name}" not found'
    else:
        entry = cluster.store.get(ROLES, binding_ns, name)
        missing = f'role.rbac.authorization.k8s.io "{name}" not found'
    if entry is None:
        return None, missing
    return list(entry.obj.get("rules") or []), ""


def _subject_text(subject: dict, binding_ns: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return f'ServiceAccount "{subject.get("name")}/{ns}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


def _visit(cluster: Cluster, user: UserInfo, namespace: str) -> _Visit:
    """Every rule that applies to `user` in `namespace` ("" : cluster-wide bindings only), with the
    binding that grants it (rbac's VisitRulesFor)."""
    out = _Visit()
    with cluster.store.lock:
        bindings = [
            (e.obj, "ClusterRoleBinding") for e in cluster.store.entries(CLUSTER_ROLE_BINDINGS)
        ]
        if namespace:
            bindings += [
                (e.obj, "RoleBinding") for e in cluster.store.entries(ROLE_BINDINGS, namespace)
            ]
        for binding, kind in bindings:
            bns = binding["metadata"].get("namespace", "")
            subject = next(
                (s for s in binding.get("subjects") or [] if _subject_matches(s, user, bns)), None
            )
            if subject is None:
                continue
            ref = binding.get("roleRef") or {}
            rules, error = _role_rules(cluster, ref, bns)
            if rules is None:
                out.errors.append(error)
                continue
            named = binding["metadata"]["name"] + (f"/{bns}" if bns else "")
            why = (
                f'RBAC: allowed by {kind} "{named}" of {ref.get("kind")} "{ref.get("name")}" '
                f"to {_subject_text(subject, bns)}"
            )
            out.rules += [(r, why) for r in rules]
    return out


# ----------------------------------------------------------------------------------- deciding
def authorize(cluster: Cluster, a: Attributes) -> tuple[bool, str]:
    """(allowed, reason) for one request: the union of the authorizers, first allow wins."""
    if MASTERS in a.user.groups:
        return True, ""
    if a.user.name == STAGED_USER and cluster.staged:
        return _staged(cluster, a)
    visit = _visit(cluster, a.user, a.namespace if a.resource_request else "")
    for rule, why in visit.rules:
        if rule_allows(a, rule):
            return True, why
    if not visit.errors:
        return False, ""
    errors = visit.errors[0] if len(visit.errors) == 1 else f"[{', '.join(visit.errors)}]"
    return False, f"RBAC: {errors}"


def _staged(cluster: Cluster, a: Attributes) -> tuple[bool, str]:
    """The staged identity: everything but the forbidden namespaces (and, since it then holds only
    namespaced roles, anything across all namespaces) and the forbidden resources."""
    if not a.resource_request or (a.group, a.resource) in resources.SELF_REVIEWS:
        return True, "every identity may review itself and read discovery"
    full = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    if full in cluster.forbidden_resources or a.resource in cluster.forbidden_resources:
        return False, ""
    if a.namespace and a.namespace in cluster.forbidden_namespaces:
        return False, ""
    res = next(
        (r for r in resources.RESOURCES if r.group == a.group and r.plural == a.resource), None
    )
    namespaced = res.namespaced if res is not None else True
    if not a.namespace and namespaced and cluster.forbidden_namespaces:
        return False, ""
    return True, "granted by the staged role"


def forbidden(a: Attributes, reason: str = "") -> ApiError:
    """The 403 the API server answers (responsewriters.Forbidden + apierrors.NewForbidden)."""
    who = a.user.name
    if not a.resource_request:
        msg = f'User "{who}" cannot {a.verb} path "{a.path}"'
    else:
        resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
        msg = f'User "{who}" cannot {a.verb} resource "{resource}" in API group "{a.group}" {scope}'
    if reason:
        msg = f"{msg}: {reason}"
    qualified = f"{a.resource}.{a.group}" if a.group else a.resource
    if not a.resource_request or not a.resource:
        message = f"forbidden: {msg}"
    elif a.name:
        message = f'{qualified} "{a.name}" is forbidden: {msg}'
    else:
        message = f"{qualified} is forbidden: {msg}"
    details: dict = {"group": a.group, "kind": a.resource}
    if a.name:
        details["name"] = a.name
    return ApiError(403, "Forbidden", message, details=details)


def rules_for(
    cluster: Cluster, user: UserInfo, namespace: str
) -> tuple[list[dict], list[dict], bool]:
    """(resource rules, non-resource rules, incomplete) for a SelfSubjectRulesReview."""
    if MASTERS in user.groups:
        return (
            [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            False,
        )
    if user.name == STAGED_USER and cluster.staged:
        return _staged_rules(cluster, namespace), _DISCOVERY_RULE, False
    visit = _visit(cluster, user, namespace)
    res, non = [], []
    for rule, _ in visit.rules:
        if rule.get("resources"):
            res.append(
                {
                    "verbs": list(rule.get("verbs") or []),
                    "apiGroups": list(rule.get("apiGroups") or []),
                    "resources": list(rule["resources"]),
                    **(
                        {"resourceNames": list(rule["resourceNames"])}
                        if rule.get("resourceNames")
                        else {}
                    ),
                }
            )
        if rule.get("nonResourceURLs"):
            non.append(
                {
                    "verbs": list(rule.get("verbs") or []),
                    "nonResourceURLs": list(rule["nonResourceURLs"]),
                }
            )
    return res, non, bool(visit.errors)


_DISCOVERY_RULE = [
    {
        "verbs": ["get"],
        "nonResourceURLs": [
            "/healthz",
            "/livez",
            "/readyz",
            "/version",
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
        ],
    }
]


def _staged_rules(cluster: Cluster, ns: str) -> list[dict]:
    rules: list[dict] = [
        {
            "verbs": ["create"],
            "apiGroups": [resources.AUTHZ_GROUP],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        }
    ]
    if ns in cluster.forbidden_namespaces:
        return rules
    if not cluster.forbidden_resources:
        return rules + [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    for r in resources.RESOURCES:
        if (r.group, r.plural) in resources.SELF_REVIEWS:
            continue
        names = [r.plural] + [f"{r.plural}/{s}" for s in r.subresources]
        names = [n for n in names if n not in cluster.forbidden_resources]
        if names:
            rules.append({"verbs": list(r.verbs), "apiGroups": [r.group], "resources": names})
    return rules


# ------------------------------------------------------------------------- what every cluster has
def bootstrap_policy() -> list[tuple[str, dict]]:
    """The ClusterRoles and ClusterRoleBindings every API server creates at start
    (plugin/pkg/auth/authorizer/rbac/bootstrappolicy) that the simulated cluster needs: anyone
    authenticated may review itself and read discovery, and `system:masters` may do anything."""
    labels = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    annotations = {"rbac.authorization.kubernetes.io/autoupdate": "true"}

    def role(name: str, rules: list[dict]) -> tuple[str, dict]:
        return CLUSTER_ROLES, {
            "apiVersion": f"{GROUP}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "rules": rules,
        }

    def binding(name: str, groups: list[str]) -> tuple[str, dict]:
        return CLUSTER_ROLE_BINDINGS, {
            "apiVersion": f"{GROUP}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": g} for g in groups],
        }

    discovery = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi"]
    discovery += ["/openapi/*", "/readyz", "/version", "/version/"]
    return [
        role(
            "cluster-admin",
            [
                {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                {"verbs": ["*"], "nonResourceURLs": ["*"]},
            ],
        ),
        binding("cluster-admin", [MASTERS]),
        role(
            "system:basic-user",
            [
                {
                    "verbs": ["create"],
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["selfsubjectreviews"],
                },
                {
                    "verbs": ["create"],
                    "apiGroups": [resources.AUTHZ_GROUP],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                },
            ],
        ),
        binding("system:basic-user", ["system:authenticated"]),
        role("system:discovery", [{"verbs": ["get"], "nonResourceURLs": discovery}]),
        binding("system:discovery", ["system:authenticated"]),
        role(
            "system:public-info-viewer",
            [
                {
                    "verbs": ["get"],
                    "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                }
            ],
        ),
        binding("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
        role(
            "system:service-account-issuer-discovery",
            [
                {
                    "verbs": ["get"],
                    "nonResourceURLs": [
                        "/.well-known/openid-configuration",
                        "/.well-known/openid-configuration/",
                        "/openid/v1/jwks",
                        "/openid/v1/jwks/",
                    ],
                }
            ],
        ),
        binding("system:service-account-issuer-discovery", ["system:serviceaccounts"]),
    ]
