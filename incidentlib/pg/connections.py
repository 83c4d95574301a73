"""How many connections, in which state, from whom, against max_connections and the reserved slots.

The counts are built from the one pg_stat_activity snapshot of `pg_activity.fetch_sessions`; the
server's limits come from SERVER_SQL. Sessions PostgreSQL hides from this role count as state
`hidden`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .session import query

if TYPE_CHECKING:
    import pandas as pd

    from .session import Connection

HIDDEN_STATE = "hidden (insufficient privilege)"
STATES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
)

# The server's limits and who we are. Source: PostgreSQL 15 docs, 20.3.1 "Connection Settings"
# (max_connections, superuser_reserved_connections; reserved_connections is PostgreSQL 16+, hence
# missing_ok) and 9.26 "System Information Functions" (pg_has_role, pg_is_in_recovery).
SERVER_SQL = """/* incident-runbook: server */
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       coalesce(current_setting('reserved_connections', true), '0')::int AS reserved,
       current_setting('server_version_num')::int AS server_version_num,
       current_setting('server_version') AS server_version,
       pg_is_in_recovery() AS in_recovery,
       current_user AS role,
       current_database() AS database,
       pg_backend_pid() AS pid,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       pg_has_role(current_user, 'pg_monitor', 'USAGE') AS pg_monitor"""

CONNECTION_COLUMNS = ["state", "database", "user", "application", "client", "count", "longest_s"]


def fetch_server(conn: Connection) -> dict[str, Any]:
    """The server's connection limits, version and our own role and pid."""
    rows = query(conn, SERVER_SQL, what="server settings")
    return dict(rows[0]) if rows else {}


def _client_sessions(sessions: pd.DataFrame) -> pd.DataFrame:
    """The sessions that take a max_connections slot: client backends, and hidden sessions in a
    database."""
    return sessions[
        (sessions["backend_type"] == "client backend")
        | (sessions["hidden"] & sessions["database"].notna())
    ]


def connections_frame(sessions: pd.DataFrame) -> pd.DataFrame:
    """Client connections grouped by state, database, user, application and client address, with a
    count."""
    import pandas as pd

    if sessions is None or len(sessions) == 0:
        return pd.DataFrame(columns=CONNECTION_COLUMNS)
    df = _client_sessions(sessions).copy()
    df["state"] = df["state"].where(~df["hidden"], HIDDEN_STATE).fillna("unknown")
    keys = ["state", "database", "user", "application", "client"]
    for k in keys[1:]:
        df[k] = df[k].fillna("").astype(str)
    out = (
        df.groupby(keys, dropna=False, sort=False)
        .agg(count=("pid", "size"), longest_s=("state_s", "max"))
        .reset_index()
    )
    out["count"] = out["count"].astype("int64")
    out["longest_s"] = out["longest_s"].astype("float64").round(1)
    return out.sort_values(["count", "state"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )[CONNECTION_COLUMNS]


def counts_by(connections: pd.DataFrame, key: str) -> pd.DataFrame:
    """Connection counts by one column (state, database, user, application, client), largest
    first."""
    import pandas as pd

    if connections is None or len(connections) == 0:
        return pd.DataFrame(columns=[key, "count"])
    out = connections.groupby(key, sort=False)["count"].sum().reset_index()
    return out.sort_values(["count", key], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def connection_summary(connections: pd.DataFrame, server: dict[str, Any] | None) -> dict[str, Any]:
    """Totals against the limits: used, by state, max_connections, reserved slots, free slots, usage
    share."""
    server = server or {}
    by_state = (
        {}
        if connections is None or len(connections) == 0
        else {str(k): int(v) for k, v in connections.groupby("state")["count"].sum().items()}
    )
    used = sum(by_state.values())
    max_conn = server.get("max_connections")
    reserved = int(server.get("superuser_reserved") or 0) + int(server.get("reserved") or 0)
    out: dict[str, Any] = {
        "used": used,
        "by_state": by_state,
        "hidden": by_state.get(HIDDEN_STATE, 0),
        "max_connections": max_conn,
        "reserved": reserved,
        "available": None,
        "usage": None,
    }
    if max_conn:
        usable = max(int(max_conn) - reserved, 1)
        out["available"] = usable - used
        out["usage"] = round(used / usable, 4)
    return out


def counts_overview(connections: pd.DataFrame) -> pd.DataFrame:
    """One table of counts by state, database, user, application and client: dimension, value,
    count."""
    import pandas as pd

    parts = []
    for key in ("state", "database", "user", "application", "client"):
        part = counts_by(connections, key).rename(columns={key: "value"})
        if key == "state":  # the runbook's four states always show, zero included
            missing = [s for s in STATES[:4] if s not in set(part["value"])]
            part = pd.concat(
                [part, pd.DataFrame({"value": missing, "count": [0] * len(missing)})],
                ignore_index=True,
            )
        part.insert(0, "dimension", key)
        parts.append(part)
    out = (
        pd.concat(parts, ignore_index=True)
        if len(connections)
        else pd.DataFrame(columns=["dimension", "value", "count"])
    )
    return out.astype({"count": "int64"})
