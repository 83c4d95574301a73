"""Pure helpers that build and compare Kubernetes objects: names, hashes, templates, quantities."""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import TypeVar

from ..kube.client import strip_empty

T = TypeVar("T")
SAFE = "bcdfghjklmnpqrstvwxz2456789"
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"


_SAFE_TABLE = bytes(ord(SAFE[b % len(SAFE)]) for b in range(256))


def safe_hash(data: object, length: int = 10) -> str:
    """A stable name suffix from data, in Kubernetes' safe alphabet."""
    text = data if isinstance(data, str) else json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).digest()[:length].translate(_SAFE_TABLE).decode()


def clone(obj: T) -> T:
    """A deep copy of JSON-like data (faster than copy.deepcopy)."""
    return json.loads(json.dumps(obj))  # type: ignore[no-any-return]


def random_suffix(rng: random.Random, length: int = 5) -> str:
    return "".join(rng.choice(SAFE) for _ in range(length))


def comparable_template(template: dict) -> object:
    """A pod template without its hash label or empty values, for equality."""
    t = clone(template)
    (t.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
    return strip_empty(t)


def template_hash(template: dict) -> str:
    return safe_hash(comparable_template(template))


def controller_ref(owner: dict) -> dict:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: dict) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


_QTY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DEC = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3}


def quantity(text: object) -> float:
    """The numeric value of a quantity ('512Mi' -> bytes, '250m' -> 0.25)."""
    if isinstance(text, int | float):
        return float(text)
    m = _QTY.match(str(text).strip())
    if not m:
        raise ValueError(
            "quantities must match the regular expression "
            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {text!r}"
        )
    num, unit = float(m.group(1)), m.group(2)
    if unit in _BIN:
        return num * _BIN[unit]
    if unit in _DEC:
        return num * _DEC[unit]
    raise ValueError(f"unknown quantity suffix in {text!r}")


def container_requests(pod: dict, resource: str) -> float:
    """Sum of a resource's requests (falling back to limits) over the pod's containers."""
    total = 0.0
    for c in pod.get("spec", {}).get("containers", []):
        res = c.get("resources") or {}
        value = (res.get("requests") or {}).get(resource) or (res.get("limits") or {}).get(resource)
        if value is not None:
            total += quantity(value)
    return total
