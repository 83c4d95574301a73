"""The scrapbook wire format, one scrap at a time: its MIME type, how a DataFrame scrap is decoded,
and notebook nodes as plain JSON values.

A leaf: the notebook side (`notebook.run.glue`), the redaction of archived notebooks (`redact`) and
the evidence readers all use it, so none of them depends on another for it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SCRAP_MIME = "application/scrapbook.scrap.{encoder}+json"
SCRAP_MIME_PREFIX = "application/scrapbook.scrap."
# A DataFrame scrap's parquet compression: zstd makes the scraps of an outage run at 5,000 pods a
# quarter smaller than parquet's default (snappy), and papermill writes the whole notebook, scraps
# included, twice for every cell. Every parquet reader scrapbook may use (pyarrow, fastparquet)
# reads it.
PARQUET_COMPRESSION = "zstd"


def plain(value: Any) -> Any:
    """A notebook node (or any nest of mappings and sequences) as plain dicts with text keys and
    lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def frame_from_scrap(data: str) -> pd.DataFrame:
    """A DataFrame scrap's data (base64 parquet) decoded, as `scrapbook` would, but on the calling
    thread only.

    `pd.read_parquet(io.BytesIO(...))` (what scrapbook does) lets Arrow's I/O threads call back into
    Python to read the buffer; a process that exits right after, like `runbook run`, then aborts now
    and then with "terminate called without an active exception" (apache/arrow#34314). An Arrow
    buffer and no thread pools keep Python and Arrow's threads apart."""
    import base64

    import pandas as pd
    import pyarrow as pa

    return pd.read_parquet(
        pa.BufferReader(base64.b64decode(data)), use_threads=False, pre_buffer=False
    )


def read(nb: Any, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The scraps a notebook (a dict or a NotebookNode) glued, in scrapbook's format: name -> value
    (DataFrames, dicts, lists, strings); with `names`, only those (the others are not decoded). A
    later scrap of a name wins, as in scrapbook."""
    wanted = None if names is None else set(names)
    out: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            for mime, payload in (output.get("data") or {}).items():
                if not mime.startswith(SCRAP_MIME_PREFIX) or not isinstance(payload, dict):
                    continue
                name = payload.get("name")
                if name is None or (wanted is not None and name not in wanted):
                    continue
                data = payload.get("data")
                if payload.get("encoder") == "pandas" and isinstance(data, str) and data:
                    out[name] = frame_from_scrap(data)
                else:
                    out[name] = plain(data)
    return out
