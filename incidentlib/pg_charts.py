"""The database runbook's charts: slow statements (mean and total time), connections by state against
max_connections, lock wait durations. Small figures (8x3 in, 80 dpi) built without pyplot's global state;
`display(fig)` shows them in a notebook."""

from __future__ import annotations

from typing import Any

__all__ = ["FIGSIZE", "DPI", "slow_statements_chart", "connections_chart", "lock_waits_chart"]

FIGSIZE = (8, 3)
DPI = 80


def _figure(ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _label(text: Any, width: int = 28) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


def slow_statements_chart(statements: Any, *, top_n: int = 5) -> Any | None:
    """Two bar charts: the top statements by mean time and by total time (ms). None when there are none."""
    if statements is None or len(statements) == 0:
        return None
    fig, (left, right) = _figure(2)
    for ax, col, title in ((left, "mean_ms", "mean time (ms)"), (right, "total_ms", "total time (ms)")):
        top = statements.sort_values(col, ascending=False).head(top_n).iloc[::-1]
        ax.barh([_label(q) for q in top["query"]], top[col], color="#c0504d" if col == "mean_ms" else "#4f81bd")
        ax.set_title(f"top {len(top)} by {title}", fontsize=9)
        ax.tick_params(labelsize=7)
    return fig


def connections_chart(summary: dict[str, Any]) -> Any | None:
    """Connections by state as one stacked bar against max_connections and the reserved slots."""
    by_state = summary.get("by_state") or {}
    if not by_state:
        return None
    fig, ax = _figure()
    left = 0
    for state, n in sorted(by_state.items(), key=lambda kv: -kv[1]):
        ax.barh(["connections"], [n], left=left, label=f"{state} ({n})")
        left += n
    limit = summary.get("max_connections")
    if limit:
        ax.axvline(limit, color="black", linestyle="--", linewidth=1)
        ax.axvline(limit - (summary.get("reserved") or 0), color="grey", linestyle=":", linewidth=1)
        ax.set_xlim(0, max(limit, left) * 1.05)
        ax.set_title(f"{left} connections of max_connections {limit} (dotted: usable without the reserved slots)", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    ax.tick_params(labelsize=7)
    return fig


def lock_waits_chart(blocking: Any) -> Any | None:
    """How long each waiting session has waited (s), labelled with the pid it waits for."""
    if blocking is None or len(blocking) == 0:
        return None
    waits = blocking.groupby("blocked_pid", sort=False).agg(wait_s=("wait_s", "max"), blocking_pid=("blocking_pid", "first"),
                                                            root=("root_blocking_pid", "first")).reset_index()
    waits = waits.sort_values("wait_s")
    fig, ax = _figure()
    ax.barh([f"pid {p} (waits for {b}, root {r})" for p, b, r in zip(waits["blocked_pid"], waits["blocking_pid"], waits["root"], strict=True)],
            waits["wait_s"], color="#9bbb59")
    ax.set_xlabel("lock wait (s)", fontsize=8)
    ax.set_title("lock waits", fontsize=9)
    ax.tick_params(labelsize=7)
    return fig
