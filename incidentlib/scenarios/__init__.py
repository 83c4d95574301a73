"""The steps each scenario notebook calls, one or two per cell: triage, outage, database,
performance, post-mortem (and `common`, what they share; `alerts`, what is firing, for triage).
Each module holds its notebook's checked `Params`, the `Facts` it builds, and the steps that read,
show, assess and mitigate."""

__all__ = ["alerts", "common", "database", "outage", "performance", "postmortem", "triage"]
