"""Every chart of the runbooks, in one idiom: a `matplotlib.figure.Figure` (never pyplot's global
state), 8x3 inches at 80 dpi, shown in the notebook as PNG bytes (`show`), so each chart appears
exactly once, needs no pyplot backend, embeds in the HTML evidence, and the executed notebook stays
small.

- outage: pods by status per owner, the incident timeline;
- database: the slowest statements, connections against max_connections, lock waits;
- performance: latency per request, Prometheus series, memory per pod, the leak suspects' fits,
  ERROR lines per minute;
- post-mortem: the merged incident timeline, severity over time.

A chart with nothing to draw says so in its middle (or, for the database charts, is None: not
shown). The outage and database charts are drawn by the notebook's chart helper process
(`chartworker`) where it runs: `*_data` takes out of the frames the plain values `figures.RECIPES`
draws from, and the helper draws them without pandas; the same charts drawn here go through the same
two steps."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..severity import LEVELS
from . import figures
from .figures import DPI as DPI  # the charts' idiom and the helper's recipes, for every chart user
from .figures import FALLBACK_COLORS as _FALLBACK
from .figures import FIGSIZE as FIGSIZE
from .figures import RECIPES as RECIPES
from .figures import figure as _figure
from .figures import label as _label
from .figures import png as png
from .figures import recipe_png as recipe_png
from .figures import time_axis as _time_axis
from .figures import warm_up as warm_up

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pods_by_status_data(pods: pd.DataFrame, *, top: int = 12) -> dict[str, Any]:
    """What `figures.pods_by_status` draws, as plain values: the `top` owners (the deployment or
    controller; a pod without one by its name), those with the most pods not running first, listed
    bottom to top, and for each kubectl STATUS one count per owner."""
    if pods.empty:
        return {"owners": [], "counts": {}}
    owner = pods["owner"].where(pods["owner"].astype(bool), pods["name"])
    counts = pd.crosstab(owner, pods["status"])
    not_running = counts.drop(
        columns=[c for c in ("Running", "Completed") if c in counts.columns]
    ).sum(axis=1)
    order = (not_running * 1000 + counts.sum(axis=1)).sort_values(ascending=False).index[:top]
    counts = counts.loc[list(order)[::-1]]
    return {
        "owners": [str(o) for o in counts.index],
        "counts": {str(c): [float(v) for v in counts[c]] for c in counts.columns},
    }


def pods_by_status(
    pods: pd.DataFrame, *, top: int = 12, title: str = "Pods by status per owner"
) -> Figure:
    """A stacked bar per owner (the deployment or controller) of its pods' kubectl STATUS."""
    return figures.pods_by_status(**pods_by_status_data(pods, top=top), title=title)


def timeline_frame(
    *,
    rollouts: pd.DataFrame,
    pods: pd.DataFrame,
    events: pd.DataFrame,
    deployment: str | None = None,
    since: timedelta | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """The incident's moments as rows: time, lane (rollout / first failure / restart / warning),
    label, count. Equal times keep this order: rollouts, restarts, then the warning events as
    listed, each one's first failure before its last warning.

    Built from columns, not row by row: `iterrows` over a cluster's thousands of warnings was a
    fifth of a second of the chart helper's time at 5,000 pods."""
    now = now or datetime.now(UTC)
    start = now - since if since else None
    rows: list[tuple[Any, str, str, int]] = []
    made = rollouts[rollouts["created"].notna()]
    rows += [
        (t, "rollout", f"rev {rev}: {images}", 1)
        for t, rev, images in zip(
            made["created"].tolist(),
            made["revision"].tolist(),
            made["images"].tolist(),
            strict=True,
        )
    ]
    if not pods.empty:
        scoped = pods[pods["owner"] == deployment] if deployment else pods
        failing = scoped[(scoped["restarts"] > 0) & scoped["last_restart"].notna()]
        rows += [
            (t, "restart", f"{name} ({n})", int(n))
            for t, name, n in zip(
                failing["last_restart"].tolist(),
                failing["name"].tolist(),
                failing["restarts"].tolist(),
                strict=True,
            )
        ]
    if not events.empty:
        warn = events[events["type"] == "Warning"]
        for first, last, reason, obj, n in zip(
            warn["first_seen"].tolist(),
            warn["last_seen"].tolist(),
            warn["reason"].tolist(),
            warn["object"].tolist(),
            warn["count"].tolist(),
            strict=True,
        ):
            if not pd.isna(first):
                rows.append((first, "first failure", f"{reason} {obj}", int(n)))
            if not pd.isna(last):
                rows.append((last, "warning", f"{reason} {obj}", int(n)))
    df = pd.DataFrame(rows, columns=["time", "lane", "label", "count"])
    df["time"] = pd.to_datetime(df["time"], utc=True)
    if start is not None and len(df):
        # no rollout inside the window: keep the last one before it, it is usually the cause
        before = df[(df["lane"] == "rollout") & (df["time"] < start)]
        keep = df["time"] >= start
        if len(before) and not (keep & (df["lane"] == "rollout")).any():
            keep |= df.index == before["time"].idxmax()
        df = df[keep]
    return df.sort_values("time", kind="stable").reset_index(drop=True)


def timeline_data(frame: pd.DataFrame) -> dict[str, Any]:
    """What `figures.timeline` draws, as plain values: each lane's times (naive, UTC) and counts,
    and the rollouts with their labels."""
    if frame.empty:
        return {"lanes": {}, "rollouts": []}
    naive = pd.to_datetime(frame["time"], utc=True).dt.tz_convert(None)
    lanes = {}
    for lane in figures.TIMELINE_LANES:
        part = frame["lane"] == lane
        if part.any():
            lanes[lane] = (
                naive[part].dt.to_pydatetime().tolist(),
                [float(c) for c in frame.loc[part, "count"]],
            )
    made = frame["lane"] == "rollout"
    rollouts = list(
        zip(naive[made].dt.to_pydatetime().tolist(), frame.loc[made, "label"].tolist(), strict=True)
    )
    return {"lanes": lanes, "rollouts": rollouts}


def timeline(frame: pd.DataFrame, *, title: str = "Incident timeline") -> Figure:
    """Rollouts, first failures, restarts and warning events on one time axis (marker size ~
    count)."""
    return figures.timeline(**timeline_data(frame), title=title)


def show(*charts: Figure | bytes | None) -> None:
    """Display charts in the notebook as PNG images (figures are rendered here; None is skipped)."""
    from IPython.display import Image, display

    for chart in charts:
        if chart is not None and chart != b"":  # b"": a recipe with nothing to draw
            display(Image(data=chart if isinstance(chart, bytes) else png(chart), format="png"))


# ----------------------------------------------------------------------------------------- database
def slow_statements_data(statements: pd.DataFrame | None, *, top_n: int = 5) -> dict[str, Any]:
    """What `figures.slow_statements` draws, as plain values: the top statements by mean time and
    by total time (ms), each panel bottom to top."""
    if statements is None or len(statements) == 0:
        return {"panels": []}
    panels = []
    for col, title, color in (
        ("mean_ms", "mean time (ms)", "#c0504d"),
        ("total_ms", "total time (ms)", "#4f81bd"),
    ):
        top = statements.sort_values(col, ascending=False).head(top_n).iloc[::-1]
        panels.append(
            {
                "title": f"top {len(top)} by {title}",
                "labels": [_label(q) for q in top["query"]],
                "values": [float(v) for v in top[col]],
                "color": color,
            }
        )
    return {"panels": panels}


def slow_statements(statements: pd.DataFrame | None, *, top_n: int = 5) -> Figure | None:
    """Two bar charts: the top statements by mean time and by total time (ms). None when there are
    none."""
    return figures.slow_statements(**slow_statements_data(statements, top_n=top_n))


connections = figures.connections


def lock_waits_data(blocking: pd.DataFrame | None) -> dict[str, Any]:
    """What `figures.lock_waits` draws, as plain values: each waiting session, labelled with the
    pid it waits for and the root blocker, and its longest wait (s), shortest first."""
    if blocking is None or len(blocking) == 0:
        return {"labels": [], "seconds": []}
    waits = (
        blocking.groupby("blocked_pid", sort=False)
        .agg(
            wait_s=("wait_s", "max"),
            blocking_pid=("blocking_pid", "first"),
            root=("root_blocking_pid", "first"),
        )
        .reset_index()
        .sort_values("wait_s")
    )
    return {
        "labels": [
            f"pid {p} (waits for {b}, root {r})"
            for p, b, r in zip(
                waits["blocked_pid"], waits["blocking_pid"], waits["root"], strict=True
            )
        ],
        "seconds": [float(w) for w in waits["wait_s"]],
    }


def lock_waits(blocking: pd.DataFrame | None) -> Figure | None:
    """How long each waiting session has waited (s), labelled with the pid it waits for."""
    return figures.lock_waits(**lock_waits_data(blocking))


# -------------------------------------------------------------------------------------- performance
def latency(df: pd.DataFrame, *, failed: pd.Series, slo_ms: float) -> Figure:
    """Total time per request (failed ones in red) and its histogram, both against the SLO."""
    fig, (left, right) = _figure(ncols=2)
    left.bar(
        list(range(1, len(df) + 1)),
        df["total_ms"].fillna(0),
        color=["#e53935" if f else "#1e88e5" for f in failed],
    )
    replied = df.loc[df["status"].notna(), "total_ms"]
    if len(replied):
        right.hist(replied, bins=min(30, max(5, len(replied) // 2)), color="#1e88e5")
    for ax, title, xlabel in (
        (left, "latency per request (red: failed)", "request"),
        (right, "latency histogram", "total ms"),
    ):
        line = ax.axhline if ax is left else ax.axvline
        line(slo_ms, color="#fb8c00", linestyle="--", label=f"SLO {slo_ms:g} ms")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.legend(loc="upper right", fontsize=7)
        ax.tick_params(labelsize=7)
    left.set_ylabel("total ms", fontsize=8)
    return fig


def prometheus_series(
    frames: Mapping[str, pd.DataFrame],
    names: list[str],
    *,
    title: str,
    ylabel: str,
    scale: float = 1.0,
) -> Figure:
    """Several Prometheus range frames on one time axis (e.g. the latency percentiles in ms)."""
    fig, ax = _figure()
    for name in names:
        df = frames.get(name)
        if df is None or df.empty:
            continue
        for series, g in df.groupby("series"):
            label = name if series in ("value", "") else f"{name} {series}"
            ax.plot(g["time"].dt.tz_convert(None), g["value"] * scale, label=label)
    ax.set_title(title + " (UTC)", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    _time_axis(ax)
    if ax.lines:
        ax.legend(loc="upper left", fontsize=7)
    return fig


def memory_trend(trend: pd.DataFrame) -> Figure:
    """Memory per pod over the samples (MiB) and its growth since the first sample, where leaks
    show."""
    fig, (left, right) = _figure(ncols=2)
    for pod, g in trend.sort_values("time").groupby("pod"):
        mib = g["memory_bytes"] / 2**20
        times = g["time"].dt.tz_convert(None)
        left.plot(times, mib, marker="o", label=pod)
        right.plot(times, mib - mib.iloc[0], marker="o", label=pod)
    left.set_ylabel("MiB", fontsize=8)
    left.set_title("memory per pod", fontsize=9)
    right.set_ylabel("MiB since the first sample", fontsize=8)
    right.set_title("growth (a leak climbs steadily)", fontsize=9)
    for ax in (left, right):
        _time_axis(ax)
    if left.lines:  # below both panels, where it hides no line
        fig.legend(
            *left.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=6
        )
    return fig


def leak_fits(series: pd.DataFrame, leaks: pd.DataFrame, *, most: int = 6) -> Figure:
    """Each leak suspect's working set over the window (MiB), the straight line fitted through it
    (dashed) and its limit (dotted): where the line meets the limit is when it is OOM-killed."""
    if leaks.empty:
        return _figure("no leak suspect")[0]
    fig, ax = _figure()
    for i, r in enumerate(leaks.head(most).itertuples()):
        g = series[
            (series["namespace"] == r.namespace)
            & (series["pod"] == r.pod)
            & (series["container"] == r.container)
        ].sort_values("time")
        g = g[g["time"] >= g["time"].iloc[-1] - pd.Timedelta(seconds=r.span_s)]
        times = g["time"].dt.tz_convert(None)
        color = _FALLBACK[i % len(_FALLBACK)]
        ax.plot(
            times,
            g["memory_bytes"] / 2**20,
            color=color,
            label=_label(f"{r.container} of {r.pod}", 40),
        )
        hours = (g["time"] - g["time"].iloc[-1]).dt.total_seconds() / 3600
        fitted = (r.memory_bytes + r.growth_bytes_per_hour * hours) / 2**20
        ax.plot(times, fitted, color=color, linestyle="--", linewidth=1)
        if r.limit_bytes == r.limit_bytes:  # not NaN
            ax.axhline(r.limit_bytes / 2**20, color=color, linestyle=":", linewidth=1)
    ax.set_ylabel("MiB", fontsize=8)
    ax.set_title("leak suspects: working set, fitted line (dashed), limit (dotted)", fontsize=9)
    _time_axis(ax)
    ax.legend(fontsize=6, loc="upper left")
    return fig


def errors_per_minute(per_minute: pd.DataFrame) -> Figure:
    """ERROR lines per minute, stacked by pod."""
    fig, ax = _figure("no ERROR line" if per_minute.empty else None)
    if per_minute.empty:
        return fig
    table = per_minute.pivot_table(
        index="minute", columns="pod", values="error_lines", aggfunc="sum", fill_value=0
    )
    index = pd.to_datetime(table.index, utc=True).tz_convert(None)
    bottom = None
    for pod in table.columns:
        ax.bar(index, table[pod], width=1 / 1440 * 0.8, bottom=bottom, label=pod)
        bottom = table[pod].to_numpy() if bottom is None else bottom + table[pod].to_numpy()
    ax.legend(loc="upper left", fontsize=7, ncols=2)
    ax.set_ylabel("ERROR lines / min", fontsize=8)
    ax.set_title("ERROR lines per minute (UTC)", fontsize=9)
    _time_axis(ax)
    return fig


# -------------------------------------------------------------------------------------- post-mortem
_KIND_COLORS = {
    "rollout": "#1e88e5",
    "first failure": "#fb8c00",
    "restart": "#e53935",
    "warning event": "#8e24aa",
    "health check": "#00897b",
    "idle in transaction": "#6d4c41",
    "blocker": "#c62828",
    "lock wait": "#ef9a9a",
    "long query": "#5e35b1",
    "severity": "#455a64",
    "mitigation": "#43a047",
    "recovery": "#2e7d32",
}
"""The post-mortem timeline's kinds of moment, in lane order (top to bottom), and their colours."""


def incident_timeline(timeline: pd.DataFrame, *, title: str = "Incident timeline") -> Figure:
    """The merged timeline of an incident: one lane per kind of moment, time in UTC."""
    fig, ax = _figure("no evidence with a time" if timeline.empty else None)
    if timeline.empty:
        return fig
    lanes = [k for k in _KIND_COLORS if k in set(timeline["kind"])]
    for i, kind in enumerate(lanes):
        part = timeline[timeline["kind"] == kind]
        ax.scatter(
            part["time"].dt.tz_convert(None),
            [i] * len(part),
            s=40,
            color=_KIND_COLORS[kind],
            alpha=0.8,
            marker="D" if kind in ("rollout", "mitigation", "recovery") else "o",
        )
    for _, r in timeline[timeline["kind"] == "rollout"].iterrows():
        ax.axvline(r["time"].tz_convert(None), color=_KIND_COLORS["rollout"], lw=0.8, ls="--")
    ax.set_yticks(range(len(lanes)), lanes, fontsize=7)
    ax.set_ylim(len(lanes) - 0.4, -0.6)  # the first kinds (rollout, first failure) at the top
    ax.grid(alpha=0.3)
    ax.set_title(title + " (UTC)", fontsize=10)
    _time_axis(ax)
    return fig


def severity_over_time(severity: pd.DataFrame, *, title: str = "Severity over time") -> Figure:
    """Each run's severity as a step line (SEV1 at the top)."""
    fig, ax = _figure("no severity was assessed" if severity.empty else None)
    if severity.empty:
        return fig
    times = severity["time"].dt.tz_convert(None)
    ax.step(times, severity["rank"], where="post", color="#c62828")
    ax.scatter(times, severity["rank"], color="#c62828", s=30)
    for t, rank, scen in zip(times, severity["rank"], severity["scenario"], strict=True):
        ax.annotate(scen, (t, rank), xytext=(3, 4), textcoords="offset points", fontsize=7)
    ax.set_yticks([1, 2, 3, 4], list(LEVELS), fontsize=8)
    ax.set_ylim(4.5, 0.5)
    ax.grid(alpha=0.3)
    ax.set_title(title + " (UTC)", fontsize=10)
    _time_axis(ax)
    return fig
