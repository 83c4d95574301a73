"""Prometheus HTTP API client: instant and range queries with timeouts, answers as DataFrames; the
alerts it evaluates (`/api/v1/alerts`); each container's memory over the incident window, for leak
detection.

The default PromQL below fits the usual metric names (`http_requests_total`, the
`http_request_duration_seconds` histogram, cAdvisor's `container_*`); the notebook takes each as a
parameter. Placeholders: `$window` (the incident window, e.g. `1800s`), `$rate` (the rate window),
`$namespace`, `$deployment`. Any failure (refused, timeout, HTTP 500, a PromQL error) is a
SourceUnavailable whose message says which URL and why.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import socket
import string
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..errors import InvalidParameter, SourceUnavailable

# Over the whole incident window (instant queries): one number each.
DEFAULT_QUERIES: dict[str, str] = {
    "request_rate": 'sum(rate(http_requests_total{path!="/metrics"}[$rate]))',
    "error_rate": 'sum(rate(http_requests_total{status=~"5.."}[$rate])) / '
    "sum(rate(http_requests_total[$rate]))",
    "window_error_rate": (
        'sum(increase(http_requests_total{status=~"5.."}[$window])) / '
        "sum(increase(http_requests_total[$window]))"
    ),
    "latency_p50": "histogram_quantile(0.50, sum by (le) "
    "(rate(http_request_duration_seconds_bucket[$rate])))",
    "latency_p95": "histogram_quantile(0.95, sum by (le) "
    "(rate(http_request_duration_seconds_bucket[$rate])))",
    "latency_p99": "histogram_quantile(0.99, sum by (le) "
    "(rate(http_request_duration_seconds_bucket[$rate])))",
    "memory": 'sum by (pod) (container_memory_working_set_bytes{namespace="$namespace", '
    'container!=""})',
    "cpu": 'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="$namespace", '
    'container!=""}[$rate]))',
}


# Each container's working set (what the OOM killer and `kubectl top` count), as cAdvisor exposes it
# through the kubelet, and its memory limit (0: none). `container!="POD"` drops the pause container.
CONTAINER_MEMORY = (
    "max by (namespace, pod, container) (container_memory_working_set_bytes"
    '{namespace="$namespace", container!="", container!="POD"})'
)
CONTAINER_MEMORY_LIMIT = (
    "max by (namespace, pod, container) (container_spec_memory_limit_bytes"
    '{namespace="$namespace", container!="", container!="POD"})'
)
SERIES_COLUMNS = ["namespace", "pod", "container", "time", "memory_bytes"]

ALERT_COLUMNS = [
    "source",
    "alertname",
    "state",
    "silenced",
    "severity",
    "namespace",
    "service",
    "summary",
    "active_at",
    "labels",
]
"""The `alerts` scrap: one row per alert, from Prometheus (state firing or pending) or Alertmanager
(firing, silenced, inhibited, unprocessed); `service` is the first of the service, deployment,
app labels; `labels` every label as `k=v,...` (sorted)."""
SERVICE_LABELS = ("service", "deployment", "app", "app_kubernetes_io_name")


class StatusError(SourceUnavailable):
    """The server answered an HTTP error status: `code`, `reason` and the first bytes of `body`."""

    def __init__(self, message: str, *, code: int, reason: str, body: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.body = code, reason, body


def get_json(url: str, *, timeout: float, who: str, max_bytes: int = 64 << 20) -> Any:
    """GET `url` and decode its JSON within `timeout` seconds (at most `max_bytes` read). Every
    failure is a SourceUnavailable that starts with `who` (e.g. "Prometheus at http://...") and
    says why: no answer in time, unreachable, not JSON, or an HTTP error status (`StatusError`)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read(max_bytes))
    except urllib.error.HTTPError as e:
        body = e.read(500).decode("utf-8", "replace")
        raise StatusError(
            f"{who} answered HTTP {e.code}: {body.strip() or e.reason}",
            code=e.code,
            reason=str(e.reason),
            body=body,
        ) from None
    except TimeoutError:
        raise SourceUnavailable(f"{who} did not answer within {timeout:g} s") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, TimeoutError | socket.timeout):
            raise SourceUnavailable(f"{who} did not answer within {timeout:g} s") from None
        raise SourceUnavailable(f"{who} is unreachable: {e.reason}") from None
    except ValueError:
        raise SourceUnavailable(f"{who} answered something that is not JSON") from None


class QueryError(SourceUnavailable):
    """Prometheus answered, but refused this query (bad PromQL, HTTP 4xx): the other queries may
    still work."""


def render(query: str, **values: str) -> str:
    """Fill `$window`, `$rate`, `$namespace`, `$deployment`; an unknown placeholder is an
    InvalidParameter."""
    try:
        return string.Template(query).substitute(values)
    except (KeyError, ValueError) as e:
        raise InvalidParameter(
            f"PromQL {query!r} has an unknown or malformed placeholder ({e}); use $window, $rate, "
            "$namespace, $deployment"
        ) from None


def _seconds(d: dt.timedelta) -> str:
    return f"{max(int(d.total_seconds()), 1)}s"


class Prometheus:
    """A Prometheus server's HTTP API; every call has `timeout` seconds (sent as the query timeout
    too)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidParameter(
                f"prometheus_url {url!r} is not an http(s) URL; give e.g. http://prometheus:9090"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        q = dict(params, timeout=f"{self.timeout:g}s")
        full = f"{self.url}{path}?{urllib.parse.urlencode(q)}"
        try:
            payload = get_json(full, timeout=self.timeout, who=f"Prometheus at {self.url}")
        except StatusError as e:
            try:
                detail = json.loads(e.body).get("error", e.body)
            except (ValueError, AttributeError):
                detail = e.body.strip()
            kind = QueryError if 400 <= e.code < 500 else SourceUnavailable
            raise kind(
                f"Prometheus at {self.url} answered HTTP {e.code}: {detail or e.reason}"
            ) from None
        if payload.get("status") != "success":
            raise QueryError(
                f"Prometheus at {self.url} refused the query: {payload.get('errorType')}: "
                f"{payload.get('error')}"
            )
        return payload["data"]

    def instant(self, query: str, *, at: dt.datetime | None = None) -> pd.DataFrame:
        """An instant query as a frame (see `instant_frame`)."""
        params = {"query": query}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        return instant_frame(self._get("/api/v1/query", params))

    def range(
        self,
        query: str,
        *,
        since: dt.timedelta,
        step: dt.timedelta | None = None,
        end: dt.datetime | None = None,
    ) -> pd.DataFrame:
        """A range query over the last `since` (at most ~250 points), as a long frame (see
        `range_frame`)."""
        return range_frame(self.range_data(query, since=since, step=step, end=end))

    def range_data(
        self,
        query: str,
        *,
        since: dt.timedelta,
        step: dt.timedelta | None = None,
        end: dt.datetime | None = None,
    ) -> Any:
        """The `data` of a range query over the last `since` (about 250 points by default), as
        Prometheus answered it."""
        end = end or dt.datetime.now(dt.UTC)
        step = step or dt.timedelta(seconds=max(since.total_seconds() / 250, 1))
        params = {
            "query": query,
            "start": f"{(end - since).timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step.total_seconds():g}",
        }
        return self._get("/api/v1/query_range", params)

    def alerts(self) -> pd.DataFrame:
        """The alerting rules' alerts, firing and pending (`/api/v1/alerts`), as `alerts_frame`."""
        return alerts_frame(self._get("/api/v1/alerts", {}))

    def scalar(self, query: str) -> float:
        """The single value of an instant query (NaN when it has no series)."""
        df = self.instant(query)
        return float(df["value"].iloc[0]) if len(df) else math.nan


def _series_name(metric: Mapping[str, str]) -> str:
    labels = {k: v for k, v in metric.items() if k != "__name__"}
    if not labels:
        return metric.get("__name__", "value")
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def instant_frame(data: Mapping[str, Any]) -> pd.DataFrame:
    """`/api/v1/query` data -> one row per series: series (label string), time (UTC), value, label
    columns."""
    kind = data.get("resultType")
    result = data.get("result", [])
    if kind in ("scalar", "string"):
        result = [{"metric": {}, "value": result}]
    rows = []
    for item in result:
        ts, val = item["value"]
        rows.append(
            {
                "series": _series_name(item.get("metric", {})),
                "time": pd.Timestamp(float(ts), unit="s", tz="UTC"),
                "value": float(val),
                **{k: v for k, v in item.get("metric", {}).items() if k != "__name__"},
            }
        )
    df = pd.DataFrame(rows, columns=["series", "time", "value"] if not rows else None)
    if not rows:
        df = df.astype({"series": "object", "value": "float64"})
        df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def range_frame(data: Mapping[str, Any]) -> pd.DataFrame:
    """`/api/v1/query_range` data -> long frame: series, time (UTC), value (float; NaN stays
    NaN)."""
    rows = []
    for item in data.get("result", []):
        name = _series_name(item.get("metric", {}))
        for ts, val in item.get("values", []):
            rows.append((name, float(ts), float(val)))
    df = pd.DataFrame(rows, columns=["series", "time", "value"])
    df["time"] = pd.to_datetime(df["time"].astype("float64"), unit="s", utc=True)
    df["value"] = df["value"].astype("float64")
    df["series"] = df["series"].astype("object")
    return df


def label_string(labels: Mapping[str, str]) -> str:
    """Labels as one sorted `k=v,k=v` string (alertname first), for a table cell and a scrap."""
    items = sorted(labels.items(), key=lambda kv: (kv[0] != "alertname", kv[0]))
    return ",".join(f"{k}={v}" for k, v in items)


def alert_row(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    source: str,
    state: str,
    silenced: bool,
    active_at: str | None,
) -> dict[str, Any]:
    """One row of ALERT_COLUMNS from an alert's labels and annotations."""
    return {
        "source": source,
        "alertname": labels.get("alertname", ""),
        "state": state,
        "silenced": silenced,
        "severity": labels.get("severity", ""),
        "namespace": labels.get("namespace", ""),
        "service": next((labels[k] for k in SERVICE_LABELS if labels.get(k)), ""),
        "summary": annotations.get("summary") or annotations.get("description") or "",
        "active_at": pd.Timestamp(active_at) if active_at else pd.NaT,
        "labels": label_string(labels),
    }


def alerts_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """ALERT_COLUMNS from rows, firing first, then by severity label and name."""
    df = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    df["silenced"] = df["silenced"].astype("bool")
    df["active_at"] = pd.to_datetime(df["active_at"], utc=True).dt.floor("s")
    order = {"firing": 0, "pending": 1}
    rank = {"critical": 0, "page": 0, "error": 1, "warning": 2}
    if len(df):
        df = df.assign(
            _s=df["state"].map(lambda v: order.get(v, 2)),
            _r=df["severity"].str.lower().map(lambda v: rank.get(v, 3)),
        ).sort_values(["_s", "_r", "alertname"], kind="stable")
        df = df.drop(columns=["_s", "_r"])
    return df.reset_index(drop=True)


def alerts_frame(data: Mapping[str, Any]) -> pd.DataFrame:
    """`/api/v1/alerts` data -> ALERT_COLUMNS (source prometheus, state firing or pending)."""
    return alerts_table(
        [
            alert_row(
                a.get("labels") or {},
                a.get("annotations") or {},
                source="prometheus",
                state=str(a.get("state", "")),
                silenced=False,
                active_at=a.get("activeAt"),
            )
            for a in data.get("alerts", [])
        ]
    )


def series_frame(data: Mapping[str, Any], *, value: str = "memory_bytes") -> pd.DataFrame:
    """`/api/v1/query_range` data of a `by (namespace, pod, container)` query -> one row per point:
    namespace, pod, container, time (UTC), `value` (float)."""
    rows = [
        (
            m.get("namespace", ""),
            m.get("pod", ""),
            m.get("container", ""),
            float(ts),
            float(v),
        )
        for item in data.get("result", [])
        for m in [item.get("metric", {})]
        for ts, v in item.get("values", [])
    ]
    df = pd.DataFrame(rows, columns=["namespace", "pod", "container", "time", value])
    df["time"] = pd.to_datetime(df["time"].astype("float64"), unit="s", utc=True)
    df[value] = df[value].astype("float64")
    return df


def container_memory(
    prom: Prometheus, *, namespace: str, since: dt.timedelta, end: dt.datetime | None = None
) -> pd.DataFrame:
    """Each container's working set over the incident window (a range query, about 250 points,
    one every 15 s at least): SERIES_COLUMNS."""
    step = dt.timedelta(seconds=max(since.total_seconds() / 250, 15))
    query = render(CONTAINER_MEMORY, namespace=namespace)
    return series_frame(prom.range_data(query, since=since, step=step, end=end))


def container_memory_limits(
    prom: Prometheus, *, namespace: str
) -> dict[tuple[str, str, str], float]:
    """{(namespace, pod, container): memory limit in bytes} as cAdvisor reports it now (a container
    without a limit is left out)."""
    df = prom.instant(render(CONTAINER_MEMORY_LIMIT, namespace=namespace))
    if df.empty or "container" not in df:
        return {}
    return {
        (r["namespace"], r["pod"], r["container"]): float(r["value"])
        for r in df.to_dict("records")
        if r["value"] > 0
    }


def window_error_rate(
    prom: Prometheus,
    *,
    since: dt.timedelta,
    query: str = DEFAULT_QUERIES["window_error_rate"],
    namespace: str = "",
    deployment: str = "",
) -> float:
    """Share of 5xx over all requests over the incident window (NaN when nothing was served)."""
    return prom.scalar(
        render(query, window=_seconds(since), rate="1m", namespace=namespace, deployment=deployment)
    )


def findings(
    window_rate: float | None, frames: Mapping[str, pd.DataFrame], *, since: str
) -> list[dict[str, str]]:
    """A finding when Prometheus saw 1% or more 5xx over the window, with when the error rate first
    broke 1%."""
    if window_rate is None or math.isnan(window_rate) or window_rate < 0.01:
        return []
    first = first_breach(frames["error_rate"], threshold=0.01) if "error_rate" in frames else None
    when = f"; above 1% since {first:%Y-%m-%d %H:%M:%S} UTC" if first is not None else ""
    return [
        {
            "severity": "SEV2" if window_rate > 0.05 else "SEV3",
            "title": f"Prometheus: {window_rate * 100:.1f}% of requests answered 5xx over the "
            f"last {since}",
            "detail": f"5xx over all requests (http_requests_total) over the window{when}",
            "next_step": "correlate the start with the last rollout and the ERROR lines",
        }
    ]


def rendered(
    queries: Mapping[str, str],
    *,
    since: dt.timedelta,
    namespace: str,
    deployment: str,
    rate: str = "1m",
) -> dict[str, str]:
    """Every query with its placeholders filled."""
    return {
        name: render(
            q, window=_seconds(since), rate=rate, namespace=namespace, deployment=deployment
        )
        for name, q in queries.items()
    }


def collect(
    prom: Prometheus,
    queries: Mapping[str, str],
    *,
    since: dt.timedelta,
    namespace: str,
    deployment: str,
    rate: str = "1m",
) -> dict[str, pd.DataFrame]:
    """Every query as a range over `since`; a query that fails is left out and its error kept under
    `errors`.

    Returns {name: long frame} plus "errors", a frame (query, error) of the queries Prometheus
    refused; a Prometheus that cannot be reached, times out or answers 5xx raises SourceUnavailable
    at once."""
    out: dict[str, pd.DataFrame] = {}
    errors = []
    for name, q in rendered(
        queries, since=since, namespace=namespace, deployment=deployment, rate=rate
    ).items():
        try:
            out[name] = prom.range(q, since=since)
        except QueryError as e:
            errors.append({"query": name, "error": str(e)})
    out["errors"] = pd.DataFrame(errors, columns=["query", "error"])
    return out


def first_breach(series: pd.DataFrame, *, threshold: float) -> pd.Timestamp | None:
    """When a series first went above `threshold` within the window (None if it never did)."""
    above = series[series["value"] > threshold]
    return None if above.empty else above["time"].min()


def long_frame(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """All range frames in one (query, series, time, value), for the evidence."""
    parts = [df.assign(query=name) for name, df in frames.items() if name != "errors" and len(df)]
    if not parts:
        return pd.DataFrame(
            {
                "query": pd.Series(dtype="object"),
                "series": pd.Series(dtype="object"),
                "time": pd.Series(dtype="datetime64[ns, UTC]"),
                "value": pd.Series(dtype="float64"),
            }
        )
    return pd.concat(parts, ignore_index=True)[["query", "series", "time", "value"]]


def last_value(frames: Mapping[str, pd.DataFrame], name: str) -> float | None:
    """The latest non-NaN value of a single-series range frame (e.g. the current p95), or None."""
    df = frames.get(name)
    if df is None or df.empty:
        return None
    values = df.dropna(subset=["value"]).sort_values("time")["value"]
    values = values[values.abs() != math.inf]
    return None if values.empty else float(values.iloc[-1])


def queries(**overrides: str | None) -> dict[str, str]:
    """The default queries with the notebook's `query_*` parameters that are not None in their
    place."""
    unknown = set(overrides) - set(DEFAULT_QUERIES)
    if unknown:
        raise InvalidParameter(
            f"unknown query name(s) {', '.join(sorted(unknown))}; known: "
            f"{', '.join(DEFAULT_QUERIES)}"
        )
    return {name: overrides.get(name) or default for name, default in DEFAULT_QUERIES.items()}


def queries_table(
    queries: Mapping[str, str],
    *,
    since: dt.timedelta,
    namespace: str,
    deployment: str,
    rate: str = "1m",
) -> pd.DataFrame:
    """The PromQL actually sent, placeholders filled, for the evidence."""
    filled = rendered(queries, since=since, namespace=namespace, deployment=deployment, rate=rate)
    return pd.DataFrame(
        [{"query": k, "promql": v} for k, v in filled.items()], columns=["query", "promql"]
    )
