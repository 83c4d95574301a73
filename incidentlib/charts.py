"""Small charts for the outage runbook: pods by status per owner, and the incident timeline.

Figures are built with `matplotlib.figure.Figure` (not pyplot), 8x3 inches at 80 dpi, and reach the notebook
as PNG bytes (`recipe_png`), drawn by the chart helper process (`chartworker`) or, failing it, in the kernel;
`png(fig)` shows any figure in a notebook. Each shows exactly once and the executed evidence stays small."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["pods_by_status", "timeline", "timeline_frame", "png", "png_bytes", "recipe_png", "warm_up", "FIGSIZE", "DPI"]

FIGSIZE = (8, 3)
DPI = 80
_COLORS = {"Running": "#4caf50", "Completed": "#9e9e9e", "Pending": "#ffb300", "ContainerCreating": "#ffd54f",
           "CrashLoopBackOff": "#e53935", "Error": "#b71c1c", "OOMKilled": "#8e24aa", "ImagePullBackOff": "#fb8c00",
           "ErrImagePull": "#ef6c00", "Terminating": "#607d8b", "Evicted": "#795548", "Unknown": "#212121"}
_FALLBACK = ["#1e88e5", "#00acc1", "#c0ca33", "#6d4c41", "#5e35b1", "#d81b60"]


def _figure(empty: str | None = None) -> tuple[Figure, Any]:
    """A small figure and its axes; with `empty`, only that sentence in the middle."""
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    if empty:
        ax.text(0.5, 0.5, empty, ha="center", va="center")
        ax.set_axis_off()
    return fig, ax


def pods_by_status(pods: pd.DataFrame, *, top: int = 12, title: str = "Pods by status per owner") -> Figure:
    """A stacked bar per owner (the deployment or controller) of its pods' kubectl STATUS."""
    if pods.empty:
        return _figure("no pods")[0]
    fig, ax = _figure()
    owner = pods["owner"].where(pods["owner"].astype(bool), pods["name"])
    counts = pd.crosstab(owner, pods["status"])
    not_running = counts.drop(columns=[c for c in ("Running", "Completed") if c in counts.columns]).sum(axis=1)
    order = (not_running * 1000 + counts.sum(axis=1)).sort_values(ascending=False).index[:top]
    counts = counts.loc[list(order)[::-1]]
    left = pd.Series(0, index=counts.index, dtype="float64")
    extra = iter(_FALLBACK * 4)
    for status in counts.columns:
        values = counts[status].astype("float64")
        ax.barh(counts.index.astype(str), values, left=left, label=status,
                color=_COLORS.get(status) or next(extra))
        left += values
    ax.set_xlabel("pods")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right", ncols=2)
    ax.tick_params(labelsize=8)
    return fig


def timeline_frame(*, rollouts: pd.DataFrame, pods: pd.DataFrame, events: pd.DataFrame,
                   deployment: str | None = None, since: timedelta | None = None,
                   now: datetime | None = None) -> pd.DataFrame:
    """The incident's moments as rows: time, lane (rollout / first failure / restart / warning), label, count."""
    now = now or datetime.now(UTC)
    start = now - since if since else None
    rows: list[dict[str, Any]] = []
    for _, r in rollouts.iterrows():
        if not pd.isna(r["created"]):
            rows.append({"time": r["created"], "lane": "rollout", "label": f"rev {r['revision']}: {r['images']}",
                         "count": 1})
    if not pods.empty:
        scoped = pods[pods["owner"] == deployment] if deployment else pods
        failing = scoped[scoped["restarts"] > 0]
        for _, p in failing.iterrows():
            if not pd.isna(p["last_restart"]):
                rows.append({"time": p["last_restart"], "lane": "restart", "label": f"{p['name']} ({p['restarts']})",
                             "count": int(p["restarts"])})
    if not events.empty:
        warn = events[events["type"] == "Warning"]
        for _, e in warn.iterrows():
            if not pd.isna(e["first_seen"]):
                rows.append({"time": e["first_seen"], "lane": "first failure",
                             "label": f"{e['reason']} {e['object']}", "count": int(e["count"])})
            if not pd.isna(e["last_seen"]):
                rows.append({"time": e["last_seen"], "lane": "warning", "label": f"{e['reason']} {e['object']}",
                             "count": int(e["count"])})
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
    """Rollouts, first failures, restarts and warning events on one time axis (marker size ~ count)."""
    lanes = ["rollout", "first failure", "restart", "warning"]
    colors = {"rollout": "#1e88e5", "first failure": "#fb8c00", "restart": "#e53935", "warning": "#8e24aa"}
    if frame.empty:
        return _figure("nothing happened in the window")[0]
    fig, ax = _figure()
    for i, lane in enumerate(lanes):
        part = frame[frame["lane"] == lane]
        if part.empty:
            continue
        sizes = (part["count"].clip(lower=1, upper=50) ** 0.5 * 20).tolist()
        ax.scatter(part["time"].dt.tz_convert(None), [i] * len(part), s=sizes, color=colors[lane], alpha=0.7,
                   label=lane)
    for _, r in frame[frame["lane"] == "rollout"].iterrows():
        ax.axvline(r["time"].tz_convert(None), color=colors["rollout"], lw=0.8, ls="--")
        ax.annotate(r["label"].split(":", 1)[0], (r["time"].tz_convert(None), 0), xytext=(3, 6),
                    textcoords="offset points", fontsize=7)
    ax.set_yticks(range(len(lanes)), lanes, fontsize=8)
    ax.set_ylim(-0.6, len(lanes) - 0.4)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title + " (UTC)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def png(fig: Figure) -> Any:
    """The figure as an IPython PNG image (displays without a pyplot backend; embeds in HTML exports)."""
    from IPython.display import Image

    return Image(data=png_bytes(fig), format="png")


def _timeline_recipe(**kwargs: Any) -> Figure:
    return timeline(timeline_frame(**kwargs))


RECIPES = {"pods_by_status": pods_by_status, "timeline": _timeline_recipe}
"""Charts by name, for `chartworker` (which draws them in a helper process): name -> function of keywords."""


def recipe_png(name: str, **kwargs: Any) -> bytes:
    """Draw the named recipe with these keyword arguments to PNG bytes."""
    return png_bytes(RECIPES[name](**kwargs))


def warm_up() -> None:
    """Draw both kinds of chart once with two made-up rows and throw them away: loads the fonts, the layout
    engine and the date locators, so the real charts that follow are quick."""
    now = datetime.now(UTC)
    pods = pd.DataFrame({"owner": ["a", ""], "name": ["a-1", "b"], "status": ["Running", "Error"]})
    png_bytes(pods_by_status(pods, title="warm-up"))
    frame = pd.DataFrame({"time": pd.to_datetime([now - timedelta(minutes=5), now], utc=True),
                          "lane": ["rollout", "warning"], "label": ["rev 1: x", "BackOff x"], "count": [1, 3]})
    png_bytes(timeline(frame, title="warm-up"))
