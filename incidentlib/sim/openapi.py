"""A minimal OpenAPI v3 document: enough for `kubectl apply` to see that the server validates fields
itself (the `fieldValidation` query parameter on each kind's PATCH)."""

from __future__ import annotations

import hashlib
import json

from .resources import RESOURCES, Resource, group_versions

API_VERSION_TITLE = "v1.32.0"


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _gv_hash(group: str, version: str) -> str:
    return (
        hashlib.sha256(json.dumps(gv_document(group, version), sort_keys=True).encode())
        .hexdigest()[:32]
        .upper()
    )


def index(*, metrics: bool) -> dict:
    """`GET /openapi/v3`: one entry per group-version."""
    paths = {}
    for group, version in group_versions(metrics=metrics):
        p = _gv_path(group, version)
        paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={_gv_hash(group, version)}"}
    return {"paths": paths}


def _schema_name(r: Resource) -> str:
    group = {"": "core", "apps": "apps", "metrics.k8s.io": "metrics"}.get(r.group, r.group)
    return f"io.k8s.api.{group}.{r.version}.{r.kind}"


def _operation(r: Resource, verb: str) -> dict:
    params = [
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
        {
            "name": "fieldValidation",
            "in": "query",
            "schema": {"type": "string", "uniqueItems": True},
        },
    ]
    ref = {"$ref": f"#/components/schemas/{_schema_name(r)}"}
    return {
        "operationId": f"{verb}{r.kind}",
        "parameters": params,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}}
        },
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
    }


def gv_document(group: str, version: str) -> dict:
    """`GET /openapi/v3/<api|apis/group>/<version>`."""
    paths: dict[str, dict] = {}
    schemas: dict[str, dict] = {}
    prefix = "/" + _gv_path(group, version)
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        base = (
            f"{prefix}/namespaces/{{namespace}}/{r.plural}"
            if r.namespaced
            else f"{prefix}/{r.plural}"
        )
        item = {
            "get": _operation(r, "get"),
            "put": _operation(r, "put"),
            "delete": _operation(r, "delete"),
        }
        if "patch" in r.verbs:
            item["patch"] = _operation(r, "patch")
        paths[f"{base}/{{name}}"] = item
        paths[base] = {"post": _operation(r, "post"), "get": _operation(r, "list")}
        schemas[_schema_name(r)] = {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {"type": "object"},
                "status": {"type": "object"},
            },
            "x-kubernetes-group-version-kind": [
                {"group": r.group, "version": r.version, "kind": r.kind}
            ],
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": API_VERSION_TITLE},
        "paths": paths,
        "components": {"schemas": schemas},
    }
