"""Every chart of the runbooks, in one idiom: a `matplotlib.figure.Figure` (never pyplot's global
state), 8x3 inches at 80 dpi, shown in the notebook as PNG bytes (`show`), so each chart appears
exactly once, needs no pyplot backend, embeds in the HTML evidence, and the executed notebook stays
small.

- outage: pods by status per owner, the incident timeline (drawn by the chart helper process,
  `chartworker`, through `RECIPES`, or in the kernel when there is none);
- database: the slowest statements, connections against max_connections, lock waits;
- performance: latency per request, Prometheus series, memory per pod, the leak suspects' fits,
  ERROR lines per minute;
- post-mortem: the merged incident timeline, severity over time.

A chart with nothing to draw says so in its middle (or, for the database charts, is None: not
shown)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..severity import LEVELS

if TYPE_CHECKING:
    from matplotlib.figure import Figure


FIGSIZE = (8, 3)
DPI = 80
_COLORS = {
    "Running": "#4caf50",
    "Completed": "#9e9e9e",
    "Pending": "#ffb300",
    "ContainerCreating": "#ffd54f",
    "CrashLoopBackOff": "#e53935",
    "Error": "#b71c1c",
    "OOMKilled": "#8e24aa",
    "ImagePullBackOff": "#fb8c00",
    "ErrImagePull": "#ef6c00",
    "Terminating": "#607d8b",
    "Evicted": "#795548",
    "Unknown": "#212121",
}
_FALLBACK = ["#1e88e5", "#00acc1", "#c0ca33", "#6d4c41", "#5e35b1", "#d81b60"]


def _figure(empty: str | None = None, *, ncols: int = 1) -> tuple[Figure, Any]:
    """A figure of the one size and its axes (`ncols` side by side); with `empty`, only that
    sentence.

    matplotlib is imported here, at the first chart: a kernel that only shows PNG bytes drawn
    elsewhere (the outage notebook's chart helper) never pays for it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    axes: list[Any] = list(fig.subplots(1, ncols)) if ncols > 1 else [fig.add_subplot()]
    if empty:
        axes[0].text(0.5, 0.5, empty, ha="center", va="center")
        for a in axes:
            a.set_axis_off()
    return fig, axes if ncols > 1 else axes[0]


def _time_axis(ax: Any) -> None:
    """Times in UTC on the x axis (call it after plotting): small, slanted, to the second for a
    window under ten minutes, never the same label twice."""
    import matplotlib.dates as mdates

    low, high = ax.get_xlim()
    span_s = (high - low) * 86400  # matplotlib's date unit is a day
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=8))
    fmt = "%H:%M:%S" if span_s < 600 else "%H:%M" if span_s < 2 * 86400 else "%m-%d %H:%M"
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt))
    ax.tick_params(axis="x", labelsize=7, labelrotation=30)


def _label(text: Any, width: int = 28) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


def pods_by_status(
    pods: pd.DataFrame, *, top: int = 12, title: str = "Pods by status per owner"
) -> Figure:
    """A stacked bar per owner (the deployment or controller) of its pods' kubectl STATUS."""
    if pods.empty:
        return _figure("no pods")[0]
    fig, ax = _figure()
    owner = pods["owner"].where(pods["owner"].astype(bool), pods["name"])
    counts = pd.crosstab(owner, pods["status"])
    not_running = counts.drop(
        columns=[c for c in ("Running", "Completed") if c in counts.columns]
    ).sum(axis=1)
    order = (not_running * 1000 + counts.sum(axis=1)).sort_values(ascending=False).index[:top]
    counts = counts.loc[list(order)[::-1]]
    left = pd.Series(0, index=counts.index, dtype="float64")
    extra = iter(_FALLBACK * 4)
    for status in counts.columns:
        values = counts[status].astype("float64")
        ax.barh(
            counts.index.astype(str),
            values,
            left=left,
            label=status,
            color=_COLORS.get(status) or next(extra),
        )
        left += values
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("pods")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right", ncols=2)
    ax.tick_params(labelsize=8)
    return fig


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


def timeline(frame: pd.DataFrame, *, title: str = "Incident timeline") -> Figure:
    """Rollouts, first failures, restarts and warning events on one time axis (marker size ~
    count)."""
    lanes = ["rollout", "first failure", "restart", "warning"]
    colors = {
        "rollout": "#1e88e5",
        "first failure": "#fb8c00",
        "restart": "#e53935",
        "warning": "#8e24aa",
    }
    if frame.empty:
        return _figure("nothing happened in the window")[0]
    fig, ax = _figure()
    for i, lane in enumerate(lanes):
        part = frame[frame["lane"] == lane]
        if part.empty:
            continue
        sizes = (part["count"].clip(lower=1, upper=50) ** 0.5 * 20).tolist()
        ax.scatter(
            part["time"].dt.tz_convert(None),
            [i] * len(part),
            s=sizes,
            color=colors[lane],
            alpha=0.7,
            label=lane,
        )
    for _, r in frame[frame["lane"] == "rollout"].iterrows():
        ax.axvline(r["time"].tz_convert(None), color=colors["rollout"], lw=0.8, ls="--")
        ax.annotate(
            r["label"].split(":", 1)[0],
            (r["time"].tz_convert(None), 0),
            xytext=(3, 6),
            textcoords="offset points",
            fontsize=7,
        )
    ax.set_yticks(range(len(lanes)), lanes, fontsize=8)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    _time_axis(ax)
    ax.set_title(title + " (UTC)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes (the one way a chart leaves this module)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def show(*charts: Figure | bytes | None) -> None:
    """Display charts in the notebook as PNG images (figures are rendered here; None is skipped)."""
    from IPython.display import Image, display

    for chart in charts:
        if chart is not None and chart != b"":  # b"": a recipe with nothing to draw
            display(Image(data=chart if isinstance(chart, bytes) else png(chart), format="png"))


def _timeline_recipe(**kwargs: Any) -> Figure:
    return timeline(timeline_frame(**kwargs))


RECIPES: dict[str, Callable[..., Figure | None]] = {
    "pods_by_status": pods_by_status,
    "timeline": _timeline_recipe,
}
"""Charts by name, for `chartworker` (which draws them in a helper process): name -> function of
keywords."""


def recipe_png(name: str, **kwargs: Any) -> bytes:
    """Draw the named recipe with these keyword arguments to PNG bytes (b"" when it has nothing to
    draw: the database charts are then not shown)."""
    fig = RECIPES[name](**kwargs)
    return b"" if fig is None else png(fig)


def warm_up(
    kind: str = "outage", *, stop: Callable[[], bool] = lambda: False, throw_away: bool = True
) -> None:
    """Load what drawing needs (matplotlib's figure, Agg and PNG code, the font), then, with
    `throw_away`, draw the kind of chart a notebook will ask for once with made-up rows and throw
    it away: the layout engine (and, for the outage charts, the date locators) are then loaded too,
    so the real charts that follow are quick. `database`: one small bar chart, all the database
    charts need.

    The throw-away charts are worth it only to a helper that would otherwise wait (one started
    ahead of its run, `chartworker.start_ahead`): a throw-away chart saves the real one a few
    hundredths of a second and costs a tenth or more of a core, which a notebook's own run needs
    on a machine of two (measured at 5,000 pods: the outage notebook 0.17 to 0.19 s faster without
    them).
    `stop()` is asked before each one: once the real charts are waiting, drawing them is worth
    more."""
    import matplotlib.backends.backend_agg  # noqa: F401 - loaded now, not at the first chart
    import matplotlib.dates  # noqa: F401
    from matplotlib import font_manager
    from matplotlib.figure import Figure  # noqa: F401

    font_manager.fontManager.findfont(font_manager.FontProperties())
    if not throw_away or stop():
        return
    if kind == "database":
        recipe_png("connections", summary={"by_state": {"active": 1}, "max_connections": 10})
        return
    now = datetime.now(UTC)
    pods = pd.DataFrame({"owner": ["a", ""], "name": ["a-1", "b"], "status": ["Running", "Error"]})
    png(pods_by_status(pods, title="warm-up"))
    if stop():
        return
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([now - timedelta(minutes=5), now], utc=True),
            "lane": ["rollout", "warning"],
            "label": ["rev 1: x", "BackOff x"],
            "count": [1, 3],
        }
    )
    png(timeline(frame, title="warm-up"))


# ----------------------------------------------------------------------------------------- database
def slow_statements(statements: pd.DataFrame | None, *, top_n: int = 5) -> Figure | None:
    """Two bar charts: the top statements by mean time and by total time (ms). None when there are
    none."""
    if statements is None or len(statements) == 0:
        return None
    fig, (left, right) = _figure(ncols=2)
    for ax, col, title in (
        (left, "mean_ms", "mean time (ms)"),
        (right, "total_ms", "total time (ms)"),
    ):
        top = statements.sort_values(col, ascending=False).head(top_n).iloc[::-1]
        ax.barh(
            [_label(q) for q in top["query"]],
            top[col],
            color="#c0504d" if col == "mean_ms" else "#4f81bd",
        )
        ax.set_title(f"top {len(top)} by {title}", fontsize=9)
        ax.tick_params(labelsize=7)
    return fig


def connections(summary: Mapping[str, Any]) -> Figure | None:
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
        ax.set_title(
            f"{left} connections of max_connections {limit} "
            "(dotted: usable without the reserved slots)",
            fontsize=9,
        )
    ax.legend(fontsize=7, loc="upper right")
    ax.tick_params(labelsize=7)
    return fig


def lock_waits(blocking: pd.DataFrame | None) -> Figure | None:
    """How long each waiting session has waited (s), labelled with the pid it waits for."""
    if blocking is None or len(blocking) == 0:
        return None
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
    fig, ax = _figure()
    labels = [
        f"pid {p} (waits for {b}, root {r})"
        for p, b, r in zip(waits["blocked_pid"], waits["blocking_pid"], waits["root"], strict=True)
    ]
    ax.barh(labels, waits["wait_s"], color="#9bbb59")
    ax.set_xlabel("lock wait (s)", fontsize=8)
    ax.set_title("lock waits", fontsize=9)
    ax.tick_params(labelsize=7)
    return fig


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


RECIPES.update(
    {
        "slow_statements": slow_statements,
        "connections": connections,
        "lock_waits": lock_waits,
    }
)
