"""The service itself, seen from outside: HTTP probes, Prometheus, Alertmanager, its git history.

probe         HTTP requests with curl's timing breakdown and the server certificate, the health
              check loop, latency summaries, certificate findings
prometheus    the HTTP API with timeouts, range and instant frames, the queries the runbook uses,
              the alerts it evaluates, each container's memory over the window
alertmanager  the API v2's alerts, silenced and inhibited ones marked
git           the service checkout's recent commits
"""

__all__ = ["alertmanager", "git", "probe", "prometheus"]
