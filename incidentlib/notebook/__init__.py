"""The notebook side: the evidence contract of a run, its tables and charts, and its notifications.

    run          Run (sources, findings, figures, actions, scraps), show_table, glue
    charts       every chart, as matplotlib Figures shown as PNG
    chartworker  the helper process that draws the outage charts on another core
    kernel       the kernel's fast exit
    comms        the runbook's notification templates, filled, and the webhook post

Importing this package stays light (no pandas, no matplotlib): the outage notebook starts its chart
helper before anything heavy is imported."""

from .run import Gathered, Run, SourceResult, Table, glue, show_list, show_table, show_text

__all__ = [
    "Gathered",
    "Run",
    "SourceResult",
    "Table",
    "chartworker",
    "charts",
    "comms",
    "glue",
    "kernel",
    "run",
    "show_list",
    "show_table",
    "show_text",
]
