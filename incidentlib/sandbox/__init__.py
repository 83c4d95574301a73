"""Throwaway parts for the demo and the tests (only `cli` imports this package).

postgres   a throwaway PostgreSQL server, and the Stager that makes real incidents on it
demoapp    the demo HTTP service: health, login, metrics, with adjustable latency and error rate
"""

__all__ = ["demoapp", "postgres"]
