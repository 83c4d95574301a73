"""Throwaway parts for the demo and the tests (only `cli` imports this package).

postgres   a throwaway PostgreSQL server, and the Stager that makes real incidents on it
demoapp    the demo HTTP service: health, login, metrics, with adjustable latency and error rate
certs      HTTPS servers with certificates made to measure: expired, self-signed, expiring, valid
monitoring Debian's Prometheus on backfilled history with alerting rules, and Alertmanager
"""

__all__ = ["certs", "demoapp", "monitoring", "postgres"]
