"""The resource types the simulated cluster serves, and the discovery documents describing them."""

from __future__ import annotations

from dataclasses import dataclass, field

READ = ["get", "list", "watch"]
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    """One API resource: where it lives, what it is called, and what it supports."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(ALL_VERBS)
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    list_kind: str = field(default="")

    @property
    def api_version(self) -> str:
        """`v1` for the core group, `group/version` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"


METRICS_GROUP = "metrics.k8s.io"
AUTHZ_GROUP = "authorization.k8s.io"

RESOURCES: tuple[Resource, ...] = (
    Resource(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        subresources=("status",),
    ),
    Resource(
        "",
        "v1",
        "nodes",
        "Node",
        namespaced=False,
        short_names=("no",),
        subresources=("status", "proxy"),
    ),
    Resource(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        subresources=("exec", "log", "status"),
        categories=("all",),
    ),
    Resource("", "v1", "events", "Event", short_names=("ev",)),
    Resource(
        "",
        "v1",
        "services",
        "Service",
        short_names=("svc",),
        subresources=("status",),
        categories=("all",),
    ),
    Resource("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    Resource("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    Resource(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        subresources=("scale", "status"),
        categories=("all",),
    ),
    Resource(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        subresources=("scale", "status"),
        categories=("all",),
    ),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Resource(
        AUTHZ_GROUP,
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
        verbs=("create",),
    ),
    Resource(
        AUTHZ_GROUP,
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        namespaced=False,
        verbs=("create",),
    ),
    Resource(METRICS_GROUP, "v1beta1", "pods", "PodMetrics", verbs=tuple(READ)),
    Resource(METRICS_GROUP, "v1beta1", "nodes", "NodeMetrics", namespaced=False, verbs=tuple(READ)),
)


def find(group: str, version: str, plural: str) -> Resource | None:
    """The resource served at group/version/plural, or None."""
    for r in RESOURCES:
        if r.group == group and r.version == version and r.plural == plural:
            return r
    return None


def by_kind(api_version: str, kind: str) -> Resource | None:
    """The resource whose objects are `kind` in `api_version`, or None."""
    for r in RESOURCES:
        if r.api_version == api_version and r.kind == kind:
            return r
    return None


def group_versions(*, metrics: bool) -> list[tuple[str, str]]:
    """Every (group, version) served, core first."""
    out: list[tuple[str, str]] = []
    for r in RESOURCES:
        if r.group == METRICS_GROUP and not metrics:
            continue
        if (r.group, r.version) not in out:
            out.append((r.group, r.version))
    return out


def _sub_entry(r: Resource, sub: str) -> dict:
    if sub == "scale":
        return {
            "name": f"{r.plural}/scale",
            "singularName": "",
            "namespaced": r.namespaced,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        }
    if sub == "log":
        return {
            "name": f"{r.plural}/log",
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["get"],
        }
    if sub == "exec":
        return {
            "name": f"{r.plural}/exec",
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": "PodExecOptions",
            "verbs": ["create", "get"],
        }
    if sub == "proxy":
        return {
            "name": f"{r.plural}/proxy",
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": "NodeProxyOptions",
            "verbs": ["create", "delete", "get", "patch", "update"],
        }
    return {
        "name": f"{r.plural}/{sub}",
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": ["get", "patch", "update"],
    }


def resource_list(group: str, version: str) -> dict:
    """The APIResourceList of one group-version (`groupVersion` is `v1` for the core group)."""
    gv = f"{group}/{version}" if group else version
    entries: list[dict] = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        entry: dict = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        entries.extend(_sub_entry(r, s) for s in r.subresources)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}


def api_versions() -> dict:
    """`GET /api` in the legacy (non-aggregated) form."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}
        ],
    }


def api_group_list(*, metrics: bool) -> dict:
    """`GET /apis` in the legacy (non-aggregated) form."""
    groups = []
    for group, version in group_versions(metrics=metrics):
        if not group:
            continue
        gv = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str, *, metrics: bool) -> dict | None:
    """`GET /apis/<group>` or None when the group is not served."""
    for g in api_group_list(metrics=metrics)["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None
