"""Request bodies in Kubernetes' protobuf encoding, read as the JSON-shaped dicts they mean.

kubectl sends built-in objects it builds itself as protobuf (`Content-Type:
application/vnd.kubernetes.protobuf`): `kubectl create namespace|serviceaccount|configmap|secret|
role|rolebinding|clusterrole|clusterrolebinding`, and its access reviews and token requests
(`authz.py`). The body is `k8s\\0` followed by a runtime.Unknown: field 1 the TypeMeta
(apiVersion 1, kind 2), field 2 the object's own message. Field numbers are those of the generated
messages (k8s.io/api/core/v1 and rbac/v1, k8s.io/apimachinery meta/v1 `generated.proto`).

Only what those commands can send is read; any other kind is refused with the answer a real API
server gives a body in a format it cannot take (415 UnsupportedMediaType), so the client says so
instead of failing on a half-read object."""

from __future__ import annotations

import base64
from collections.abc import Callable

from .status import ApiError

MAGIC = b"k8s\x00"
ACCEPTED = "application/json, application/yaml"

Fields = list[tuple[int, bytes | int]]


def fields(data: bytes) -> Fields:
    """The (field number, value) pairs of one protobuf message: varints and length-delimited."""
    out: Fields = []
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, varint()))
        elif wire == 2:
            n = varint()
            if i + n > len(data):
                raise ValueError("truncated protobuf message")
            out.append((number, data[i : i + n]))
            i += n
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    return out


def envelope(raw: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, the object's message) of a `k8s\\0` + runtime.Unknown body."""
    outer = dict(fields(raw[len(MAGIC) :]))
    type_meta = dict(fields(_bytes(outer.get(1, b""))))
    return text(type_meta.get(1, b"")), text(type_meta.get(2, b"")), _bytes(outer.get(2, b""))


def _bytes(value: bytes | int) -> bytes:
    if isinstance(value, int):
        raise ValueError("expected a length-delimited field, found a varint")
    return value


def text(value: bytes | int) -> str:
    return _bytes(value).decode()


def strings(pairs: Fields, number: int) -> list[str]:
    return [text(v) for n, v in pairs if n == number]


def string(pairs: Fields, number: int) -> str | None:
    found = strings(pairs, number)
    return found[-1] if found else None


def _map(pairs: Fields, number: int, value: Callable[[bytes], str] = bytes.decode) -> dict:
    """A map<string, V> field: repeated entry messages, key 1 and value 2."""
    out = {}
    for n, entry in pairs:
        if n == number:
            kv = dict(fields(_bytes(entry)))
            out[text(kv.get(1, b""))] = value(_bytes(kv.get(2, b"")))
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def messages(pairs: Fields, number: int) -> list[Fields]:
    """A repeated message field: each occurrence's pairs."""
    return [fields(_bytes(v)) for n, v in pairs if n == number]


def message(pairs: Fields, number: int) -> Fields:
    """A singular message field's pairs (the last occurrence; none: empty)."""
    found = messages(pairs, number)
    return found[-1] if found else []


def _metadata(pairs: Fields) -> dict:
    """ObjectMeta: name 1, generateName 2, namespace 3, labels 11, annotations 12, finalizers 14."""
    meta = message(pairs, 1)
    out: dict = {}
    for key, number in (("name", 1), ("generateName", 2), ("namespace", 3)):
        value = string(meta, number)
        if value:
            out[key] = value
    for key, number in (("labels", 11), ("annotations", 12)):
        if entries := _map(meta, number):
            out[key] = entries
    if finalizers := strings(meta, 14):
        out["finalizers"] = finalizers
    return out


def _flag(pairs: Fields, number: int) -> bool | None:
    found = [bool(v) for n, v in pairs if n == number]
    return found[-1] if found else None


def _service_account(pairs: Fields) -> dict:
    out: dict = {}
    if pulls := [string(m, 1) or "" for m in messages(pairs, 3)]:
        out["imagePullSecrets"] = [{"name": name} for name in pulls]
    if (automount := _flag(pairs, 4)) is not None:
        out["automountServiceAccountToken"] = automount
    return out


def _config_map(pairs: Fields) -> dict:
    out: dict = {}
    if data := _map(pairs, 2):
        out["data"] = data
    if binary := _map(pairs, 3, _b64):
        out["binaryData"] = binary
    if (immutable := _flag(pairs, 4)) is not None:
        out["immutable"] = immutable
    return out


def _secret(pairs: Fields) -> dict:
    out: dict = {}
    if data := _map(pairs, 2, _b64):  # bytes on the wire, base64 in JSON
        out["data"] = data
    if kind := string(pairs, 3):
        out["type"] = kind
    if string_data := _map(pairs, 4):
        out["stringData"] = string_data
    if (immutable := _flag(pairs, 5)) is not None:
        out["immutable"] = immutable
    return out


def _rule(m: Fields) -> dict:
    out: dict = {"verbs": strings(m, 1)}
    for key, number in (
        ("apiGroups", 2),
        ("resources", 3),
        ("resourceNames", 4),
        ("nonResourceURLs", 5),
    ):
        if values := strings(m, number):
            out[key] = values
    return out


def _role(pairs: Fields) -> dict:
    return {"rules": [_rule(m) for m in messages(pairs, 2)]}


def _binding(pairs: Fields) -> dict:
    subjects = []
    for m in messages(pairs, 2):
        subject = {"kind": string(m, 1) or "", "name": string(m, 3) or ""}
        if (group := string(m, 2)) is not None:
            subject["apiGroup"] = group
        if namespace := string(m, 4):
            subject["namespace"] = namespace
        subjects.append(subject)
    ref = message(pairs, 3)
    role_ref = {
        "apiGroup": string(ref, 1) or "",
        "kind": string(ref, 2) or "",
        "name": string(ref, 3) or "",
    }
    return {"subjects": subjects, "roleRef": role_ref}


# kind -> (apiVersion, what the message holds besides its metadata)
_OBJECTS: dict[str, tuple[str, Callable[[Fields], dict]]] = {
    "Namespace": ("v1", lambda pairs: {}),
    "ServiceAccount": ("v1", _service_account),
    "ConfigMap": ("v1", _config_map),
    "Secret": ("v1", _secret),
    "Role": ("rbac.authorization.k8s.io/v1", _role),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", _role),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", _binding),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", _binding),
}


def unsupported_media_type() -> ApiError:
    """What an API server answers a body it cannot decode in the Content-Type it was sent in."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ACCEPTED,
    )


def decode_object(raw: bytes) -> dict:
    """A `k8s\\0` body of one of the kinds `kubectl create` builds, as its JSON object.

    Another kind raises the 415 answer; a malformed body raises ValueError (or IndexError,
    UnicodeDecodeError) for the caller's 400."""
    api_version, kind, message = envelope(raw)
    known = _OBJECTS.get(kind)
    if known is None or (api_version and api_version != known[0]):
        raise unsupported_media_type()
    pairs = fields(message)
    return {"apiVersion": known[0], "kind": kind, "metadata": _metadata(pairs), **known[1](pairs)}
