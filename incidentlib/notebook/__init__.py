"""The notebook side: the evidence contract of a run, its tables and charts, and its notifications.

    run          Run (sources, findings, figures, actions, scraps), show_table, glue
    charts       every chart, as matplotlib Figures shown as PNG, from the frames
    figures      the charts' idiom, and the charts the helper draws, from plain values (no pandas)
    chartworker  the helper process that draws the outage and database charts on another core
    kernel       the kernel's fast exit
    comms        the runbook's notification templates, filled, and the webhook post

Importing this package stays light (no pandas, no matplotlib): the outage notebook starts its chart
helper before anything heavy is imported."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import Gathered, Run, SourceResult, Table, glue, show_list, show_table, show_text

_FROM_RUN = {
    "Gathered",
    "Run",
    "SourceResult",
    "Table",
    "glue",
    "show_list",
    "show_table",
    "show_text",
}


def __getattr__(name: str) -> Any:
    """`run`'s names, imported when first asked for: the chart helper process and the notebook's
    first line (`chartworker`) need none of them."""
    if name in _FROM_RUN:
        value = getattr(importlib.import_module(".run", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Gathered",
    "Run",
    "SourceResult",
    "Table",
    "chartworker",
    "charts",
    "comms",
    "figures",
    "glue",
    "kernel",
    "run",
    "show_list",
    "show_table",
    "show_text",
]
