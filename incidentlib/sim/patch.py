"""The three patch flavours of the API: JSON patch (RFC 6902), merge patch (RFC 7386) and strategic
merge patch (lists merged by their merge keys)."""

from __future__ import annotations

import copy

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

# list field name -> merge key, as the Kubernetes types declare them (patchMergeKey).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "addresses": "type",
}  # containerStatuses and taints have no merge key: a patch replaces them whole


class PatchError(ValueError):
    """A patch that cannot be applied; the message says why."""


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def strategic_merge_patch(target: object, patch: object, *, field: str = "") -> object:
    """Merge like merge_patch, but lists with a known merge key merge element by element."""
    if isinstance(patch, list):
        return _merge_list(target, patch, field)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$"):
            continue  # $setElementOrder, $retainKeys, $deleteFromPrimitiveList: order/cleanup hints
        if v is None:
            result.pop(k, None)
            continue
        merged = strategic_merge_patch(result.get(k), v, field=k)
        if merged is None and isinstance(v, dict) and v.get("$patch") == "delete":
            result.pop(k, None)
        else:
            result[k] = merged
    return result


def _merge_list(target: object, patch: list, field: str) -> list:
    key = MERGE_KEYS.get(field)
    if key is None or not all(isinstance(p, dict) for p in patch):
        return [x for x in copy.deepcopy(patch) if not (isinstance(x, dict) and "$patch" in x)]
    if any(p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if "$patch" not in p]
    out = [copy.deepcopy(x) for x in target] if isinstance(target, list) else []
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        idx = next(
            (i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
            continue
        if idx is None:
            out.append(strategic_merge_patch({}, item))
        else:
            out[idx] = strategic_merge_patch(out[idx], item)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}: must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: object, parts: list[str], path: str) -> object:
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return cur


def _parent(doc: object, parts: list[str], path: str) -> tuple[object, str]:
    return _walk(doc, parts[:-1], path), parts[-1]


def _get(doc: object, path: str) -> object:
    return _walk(doc, _pointer(path), path)


def _add(doc: object, path: str, value: object) -> object:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if last == "-":
            parent.append(copy.deepcopy(value))
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), copy.deepcopy(value))
        else:
            raise PatchError(f"index out of range in path {path!r}")
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc: object, path: str) -> object:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent.pop(int(last))
    else:
        raise PatchError(f"unable to remove nonexistent key: {path!r}")
    return doc


def json_patch(doc: object, ops: object) -> object:
    """RFC 6902 operations applied to a copy of doc."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {kind!r} at {path!r} needs a value")
        if kind == "add":
            doc = _add(doc, path, op["value"])
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            doc = _remove(doc, path) if _pointer(path) else doc
            doc = _add(doc, path, op["value"])
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path!r} failed")
        elif kind in ("move", "copy"):
            value = copy.deepcopy(_get(doc, op.get("from", "")))
            if kind == "move":
                doc = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        else:
            raise PatchError(f"unexpected kind of operation: {kind!r}")
    return doc


def apply_patch(content_type: str, doc: dict, patch: object) -> dict:
    """Apply a patch body of the given content type to doc; raises PatchError."""
    ct = content_type.split(";")[0].strip()
    if ct == JSON_PATCH:
        out = json_patch(doc, patch)
    elif ct == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise PatchError("a merge patch must be a JSON object")
        out = merge_patch(doc, patch)
    elif ct == STRATEGIC_PATCH:
        if not isinstance(patch, dict):
            raise PatchError("a strategic merge patch must be a JSON object")
        out = strategic_merge_patch(doc, patch)
    else:
        raise PatchError(f"unsupported patch type {ct!r}")
    if not isinstance(out, dict):
        raise PatchError("the patch does not leave an object")
    return out
