"""Errors as the API server answers them: a `Status` object with code, reason and message."""

from __future__ import annotations

from .resources import Resource


class ApiError(Exception):
    """An error answer; `body()` is the Status object."""

    def __init__(
        self, code: int, reason: str, message: str, *, details: dict | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> dict:
        out = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _qualified(res: Resource) -> str:
    return f"{res.plural}.{res.group}" if res.group else res.plural


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{_qualified(res)} "{name}" not found',
        details={"name": name, "group": res.group, "kind": res.plural},
    )


def already_exists(res: Resource, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(res)} "{name}" already exists',
        details={"name": name, "group": res.group, "kind": res.plural},
    )


def conflict(res: Resource, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(res)} "{name}": the object '
        "has been modified; please apply your changes to the latest version and try again",
        details={"name": name, "group": res.group, "kind": res.plural},
    )


def invalid(res: Resource, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; causes are (field, message) pairs."""
    kind = f"{res.kind}.{res.group}" if res.group else res.kind
    text = "; ".join(f"{f}: {m}" for f, m in causes)
    return ApiError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {text}',
        details={
            "name": name,
            "group": res.group,
            "kind": res.kind,
            "causes": [
                {"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes
            ],
        },
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(
    res: Resource,
    verb: str,
    namespace: str | None,
    *,
    sub: str | None = None,
    name: str | None = None,
) -> ApiError:
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    resource = f"{res.plural}/{sub}" if sub in ("exec", "log") else res.plural
    what = f'{_qualified(res)} "{name}"' if name and sub in ("exec", "log") else _qualified(res)
    return ApiError(
        403,
        "Forbidden",
        f'{what} is forbidden: User "system:serviceaccount:ops:runbook" '
        f'cannot {verb} resource "{resource}" in API group "{res.group}" {scope}',
        details={"group": res.group, "kind": res.plural, **({"name": name} if name else {})},
    )


def unknown_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})
