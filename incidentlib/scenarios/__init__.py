"""The steps each scenario notebook calls, one or two per cell: triage, outage, database,
performance, post-mortem (and `common`, what they share). Each module holds its notebook's checked
`Params`, the `Facts` it builds, and the steps that read, show, assess and mitigate."""

__all__ = ["common", "database", "outage", "performance", "postmortem", "triage"]
