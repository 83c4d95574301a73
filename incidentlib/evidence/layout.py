"""What the folder and the S3 archive share: the names in an incident and the manifest's parsing.

    <archive>/<incident>/manifest.json      the incident's runs (MANIFEST)
    <archive>/<incident>/.manifest.lock     a folder's lock (LOCK)
    <archive>/.partial/<incident>/          files staged before a run is committed (PARTIAL)

`storage.py` (the folder, and which archive a location is) and `s3.py` (the bucket) both build on
it; neither imports the other's classes at module level."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import RunbookError

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"
PARTIAL = ".partial"


def parse_manifest(raw: bytes | None, where: str | Path) -> dict[str, Any]:
    """A manifest's bytes as a dict ({} for none), or a clear error when it is not JSON."""
    if raw is None:
        return {}
    try:
        return dict(json.loads(raw))
    except ValueError as e:
        raise RunbookError(
            f"{where} is not readable JSON ({e}); it may have been edited: restore it from a copy "
            "(on S3, an earlier object version)"
        ) from None


def plain_path(rel: str) -> bool:
    """A manifest path that names a file inside its incident: relative, no backslash, no '..'."""
    return (
        bool(rel)
        and not rel.startswith(("/", "\\"))
        and "\\" not in rel
        and (".." not in Path(rel).parts)
    )
