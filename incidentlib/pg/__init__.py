"""PostgreSQL, read through a read-only diagnostic session with statement and lock timeouts.

session      the diagnostic session (read-only, timeouts, who we are) and the one query path
activity     one snapshot of pg_stat_activity: sessions, activity, long-running, idle in xact
connections  counts by state, user, application and client against max_connections
locks        every lock wait with its chain and root blocker
space        database and table sizes, wraparound age, dead tuples, replication and slots
dangers      sequences near their end, invalid indexes, prepared transactions, xmin holders,
             checkpoints and WAL, running vacuums and index builds (each with its finding)
statements   pg_stat_statements: the slowest statements by mean and by total time
pods         the database's pods on Kubernetes: CPU and memory against limits, their log tails
actions      session mitigations (terminate, cancel) as Plans; restarts and resizes go through
             kube.actions"""

from .session import connect, describe_target, query

__all__ = [
    "actions",
    "activity",
    "connect",
    "connections",
    "dangers",
    "describe_target",
    "locks",
    "pods",
    "query",
    "session",
    "space",
    "statements",
]
