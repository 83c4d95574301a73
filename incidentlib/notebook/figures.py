"""The charts' one idiom, and the charts the chart helper draws, from plain values only.

A chart is a `matplotlib.figure.Figure` (never pyplot's global state), 8x3 inches at 80 dpi, leaving
as PNG bytes (`png`). `charts` builds every chart from the notebooks' DataFrames; the charts a
notebook hands to its helper process (`chartworker`: the outage and database charts, `RECIPES`) are
drawn here from lists, numbers, text and datetimes that `charts` takes out of the frames in the
kernel. So the helper never imports pandas: on a machine of two cores, the half a second of CPU that
import costs came out of the cluster's reads the charts were waiting for.

This module imports neither pandas nor (until the first chart) matplotlib."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGSIZE = (8, 3)
DPI = 80
STATUS_COLORS = {
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
FALLBACK_COLORS = ["#1e88e5", "#00acc1", "#c0ca33", "#6d4c41", "#5e35b1", "#d81b60"]
TIMELINE_LANES = {
    "rollout": "#1e88e5",
    "first failure": "#fb8c00",
    "restart": "#e53935",
    "warning": "#8e24aa",
}
"""The outage timeline's lanes, bottom to top, and their colours."""


def figure(empty: str | None = None, *, ncols: int = 1) -> tuple[Figure, Any]:
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


def time_axis(ax: Any) -> None:
    """Times in UTC on the x axis (call it after plotting): small, slanted, to the second for a
    window under ten minutes, never the same label twice."""
    import matplotlib.dates as mdates

    low, high = ax.get_xlim()
    span_s = (high - low) * 86400  # matplotlib's date unit is a day
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=8))
    fmt = "%H:%M:%S" if span_s < 600 else "%H:%M" if span_s < 2 * 86400 else "%m-%d %H:%M"
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt))
    ax.tick_params(axis="x", labelsize=7, labelrotation=30)


def label(text: Any, width: int = 28) -> str:
    """A label on one line, cut with an ellipsis past `width` characters."""
    s = " ".join(str(text or "").split())
    return s if len(s) <= width else s[: width - 1] + "…"


def png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes (the one way a chart leaves the charts' modules)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- outage
def pods_by_status(
    owners: Sequence[str],
    counts: Mapping[str, Sequence[float]],
    *,
    title: str = "Pods by status per owner",
) -> Figure:
    """A stacked bar per owner (bottom to top as given) of its pods' kubectl STATUS: `counts` maps
    each status to one count per owner."""
    if not owners:
        return figure("no pods")[0]
    fig, ax = figure()
    left = [0.0] * len(owners)
    extra = iter(FALLBACK_COLORS * 4)
    for status, values in counts.items():
        ax.barh(
            list(owners),
            list(values),
            left=list(left),
            label=status,
            color=STATUS_COLORS.get(status) or next(extra),
        )
        left = [a + b for a, b in zip(left, values, strict=True)]
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("pods")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right", ncols=2)
    ax.tick_params(labelsize=8)
    return fig


def timeline(
    lanes: Mapping[str, tuple[Sequence[datetime], Sequence[float]]],
    rollouts: Sequence[tuple[datetime, str]],
    *,
    title: str = "Incident timeline",
) -> Figure:
    """Rollouts, first failures, restarts and warning events on one time axis (marker size ~
    count): `lanes` maps a lane of `TIMELINE_LANES` to its times (naive, UTC) and counts;
    `rollouts` are the dashed lines, each with its label."""
    if not any(times for times, _ in lanes.values()):
        return figure("nothing happened in the window")[0]
    fig, ax = figure()
    order = list(TIMELINE_LANES)
    for i, lane in enumerate(order):
        times, counts = lanes.get(lane, ((), ()))
        if not times:
            continue
        ax.scatter(
            list(times),
            [i] * len(times),
            s=[min(max(c, 1), 50) ** 0.5 * 20 for c in counts],
            color=TIMELINE_LANES[lane],
            alpha=0.7,
            label=lane,
        )
    for when, text in rollouts:
        ax.axvline(when, color=TIMELINE_LANES["rollout"], lw=0.8, ls="--")
        ax.annotate(
            text.split(":", 1)[0], (when, 0), xytext=(3, 6), textcoords="offset points", fontsize=7
        )
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.set_ylim(-0.6, len(order) - 0.4)
    time_axis(ax)
    ax.set_title(title + " (UTC)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


# ----------------------------------------------------------------------------------------- database
def slow_statements(panels: Sequence[Mapping[str, Any]]) -> Figure | None:
    """Bar charts side by side, one per panel (`title`, `labels`, `values`, `color`): the top
    statements by mean time and by total time (ms). None when there are none."""
    if not panels:
        return None
    fig, axes = figure(ncols=len(panels))
    for ax, panel in zip(axes if len(panels) > 1 else [axes], panels, strict=True):
        ax.barh(list(panel["labels"]), list(panel["values"]), color=panel["color"])
        ax.set_title(panel["title"], fontsize=9)
        ax.tick_params(labelsize=7)
    return fig


def connections(summary: Mapping[str, Any]) -> Figure | None:
    """Connections by state as one stacked bar against max_connections and the reserved slots."""
    by_state = summary.get("by_state") or {}
    if not by_state:
        return None
    fig, ax = figure()
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


def lock_waits(labels: Sequence[str], seconds: Sequence[float]) -> Figure | None:
    """How long each waiting session has waited (s), one bar per label. None when none waits."""
    if not labels:
        return None
    fig, ax = figure()
    ax.barh(list(labels), list(seconds), color="#9bbb59")
    ax.set_xlabel("lock wait (s)", fontsize=8)
    ax.set_title("lock waits", fontsize=9)
    ax.tick_params(labelsize=7)
    return fig


RECIPES: dict[str, Callable[..., Figure | None]] = {
    "pods_by_status": pods_by_status,
    "timeline": timeline,
    "slow_statements": slow_statements,
    "connections": connections,
    "lock_waits": lock_waits,
}
"""Charts by name, for `chartworker` (which draws them in a helper process): name -> function of
plain keyword values (`charts` makes them from the frames)."""


def recipe_png(name: str, **kwargs: Any) -> bytes:
    """Draw the named recipe with these keyword arguments to PNG bytes (b"" when it has nothing to
    draw: the database charts are then not shown)."""
    fig = RECIPES[name](**kwargs)
    return b"" if fig is None else png(fig)


def warm_up(
    kind: str = "outage", *, stop: Callable[[], bool] = lambda: False, throw_away: bool = True
) -> None:
    """Load what drawing needs (matplotlib's figure, Agg and PNG code, the font), then, with
    `throw_away`, draw the kind of chart a notebook will ask for once with made-up values and throw
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
    png(pods_by_status(["b", "a"], {"Running": [0, 1], "Error": [1, 0]}, title="warm-up"))
    if stop():
        return
    now = datetime.now().replace(microsecond=0)
    before = now - timedelta(minutes=5)
    png(
        timeline(
            {"rollout": ([before], [1]), "warning": ([now], [3])},
            [(before, "rev 1: x")],
            title="warm-up",
        )
    )
