"""The scrapbook wire format, one scrap at a time: its MIME type, how a DataFrame scrap is decoded,
and notebook nodes as plain JSON values.

A leaf: the notebook side (`notebook.run.glue`), the redaction of archived notebooks (`redact`) and
the evidence readers all use it, so none of them depends on another for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SCRAP_MIME = "application/scrapbook.scrap.{encoder}+json"
SCRAP_MIME_PREFIX = "application/scrapbook.scrap."


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
