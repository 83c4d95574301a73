"""The service itself, seen from outside: HTTP probes, Prometheus, and its git history.

probe        HTTP requests with curl's timing breakdown, the health check loop, latency summaries
prometheus   the HTTP API with timeouts, range and instant frames, the queries the runbook uses
git          the service checkout's recent commits
"""

__all__ = ["git", "probe", "prometheus"]
