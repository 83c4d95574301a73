"""The webhook payload, the routes and the plan for a notification: pure (the catalog reads tiny
notebooks' parameter cells; nothing runs)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.serve import BadPayload, Catalog, Routing, load_routing, parse
from incidentlib.serve.incidents import Journal, State, plan
from incidentlib.serve.routes import alert_value, parse_matcher, render

from .helpers import alert, make_notebooks, payload

NOW = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return Catalog(
        make_notebooks(tmp_path_factory.mktemp("nb")),
        {"latency_slo_ms": "250"},
        text={"latency_slo_ms"},
    )


def body(*alerts: dict, **kw: object) -> bytes:
    return json.dumps(payload(*alerts, **kw)).encode()  # type: ignore[arg-type]


# -------------------------------------------------------------------------------------- payload
def test_payload_v4_is_read_with_its_times() -> None:
    raw = payload(alert(namespace="production"), alert("Other", fingerprint="ff00"))
    raw["alerts"][0]["startsAt"] = "2026-12-02T06:59:01.123456789Z"
    note = parse(json.dumps(raw))
    assert note.status == "firing" and note.group_key == '{}:{alertname="HighErrorRate"}'
    assert note.alerts[0].starts_at == datetime(2026, 12, 2, 6, 59, 1, 123456, tzinfo=UTC)
    assert note.alerts[0].ends_at is None  # Alertmanager's zero time
    assert note.common_labels == {}  # the two alerts share no label
    assert [a.fingerprint for a in note.firing] == ["a1b2c3d4e5f60718", "ff00"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.pop("groupKey"), "groupKey is missing"),
        (lambda d: d.update(version="3"), "version '3' is not supported"),
        (lambda d: d.update(status="pending"), "status 'pending' is not firing or resolved"),
        (lambda d: d.update(alerts=[]), "alerts is empty"),
        (lambda d: d["alerts"][0].pop("fingerprint"), r"alerts\[0\].fingerprint is missing"),
        (lambda d: d["alerts"][0].update(labels={"a": 1}), r"alerts\[0\].labels must be an object"),
        (lambda d: d["alerts"][0].update(startsAt="yesterday"), "is not an RFC 3339 time"),
        (lambda d: d["alerts"][0].update(fingerprint="../x"), "is not a hexadecimal hash"),
        (lambda d: d.update(commonLabels=[1]), "commonLabels must be an object"),
    ],
)
def test_a_payload_of_the_wrong_shape_is_refused_with_the_reason(change, reason: str) -> None:
    doc = payload(alert())
    change(doc)
    with pytest.raises(BadPayload, match=reason):
        parse(json.dumps(doc))


def test_malformed_json_is_refused() -> None:
    with pytest.raises(BadPayload, match="not JSON"):
        parse(b'{"version": "4",')
    with pytest.raises(BadPayload, match="must be a JSON object"):
        parse(b"[1, 2]")


# --------------------------------------------------------------------------- matchers, templates
def test_matchers_work_like_alertmanagers() -> None:
    labels = {"alertname": "KubePodCrashLooping", "severity": "critical"}
    assert parse_matcher('alertname=~"Kube.*"').matches(labels)
    assert not parse_matcher('alertname=~"Pod.*"').matches(labels)  # anchored at both ends
    assert parse_matcher("severity!=info").matches(labels)
    assert parse_matcher('namespace=""').matches(labels)  # a missing label is empty
    assert parse_matcher('alertname!~"Postgres.*"').matches(labels)
    with pytest.raises(InvalidParameter, match="is not `label=value`"):
        parse_matcher("alertname")
    with pytest.raises(InvalidParameter, match="not a regular expression"):
        parse_matcher('alertname=~"("')


def test_templates_fill_from_labels_and_check_every_value() -> None:
    labels = {"namespace": "payments", "service": "api"}
    assert render("{{ labels.namespace }}", labels, {}, parameter="namespace") == "payments"
    assert render("{{ labels.deployment or labels.service }}", labels, {}, parameter="d") == "api"
    assert render("{{ labels.deployment }}", labels, {}, parameter="deployment") is None
    for hostile in ("../etc", "a;rm -rf /", "$(id)", "x`id`", "a b", "a/b", "x\ny", "'; DROP"):
        with pytest.raises(InvalidParameter, match="no path, no shell"):
            render("{{ labels.x }}", {"x": hostile}, {}, parameter="namespace")
    assert alert_value("backend-7d9f.v2:80", label="x", parameter="p") == "backend-7d9f.v2:80"


def test_the_routes_file_is_checked_before_the_server_starts(
    tmp_path: Path, catalog: Catalog
) -> None:
    bad = {
        "routes: [{scenarios: [outage], parameters: {dsn: '{{ labels.db }}'}}]": (
            "cannot come from an alert"
        ),
        "routes: [{scenarios: [outage], parameters: {namespace: '{{ label.ns }}'}}]": (
            "must name labels.NAME"
        ),
        "routes: [{scenarios: [nope]}]": "unknown scenario 'nope'",
        "routes: [{scenarios: [outage], parameters: {replicas: 3}}]": "has no parameter",
        "routez: []": "unknown key routez",
        "routes: [{scenarios: [performance], parameters: {latency_slo_ms: fast}}]": (
            "latency_slo_ms"
        ),
    }
    for text, reason in bad.items():
        path = tmp_path / "routes.yaml"
        path.write_text(text)
        with pytest.raises(InvalidParameter, match=reason):
            catalog.check_routing(load_routing(path))


# ------------------------------------------------------------------------------------------ plan
def plan_of(
    state: State, catalog: Catalog, raw: dict, routing: Routing | None = None, now: datetime = NOW
) -> dict:
    record = plan(
        state,
        parse(json.dumps(raw)),
        routing or Routing(),
        catalog,
        now=now,
        dedupe_window=timedelta(minutes=30),
    )
    state.apply(record)
    return record


def test_one_incident_per_group_and_the_built_in_routes(catalog: Catalog) -> None:
    state = State()
    first = plan_of(state, catalog, payload(alert(namespace="payments", service="api")))
    assert first["new_round"] is True
    runs = [(j["scenario"], j["given"]) for j in first["jobs"]]
    # triage first, from the group's common labels; *ErrorRate* routes to performance; the
    # deployment comes from `service` when there is no `deployment` label
    assert runs == [
        ("triage", {"namespace": "payments", "app_deployment": "api"}),
        ("performance", {"namespace": "payments", "app_deployment": "api"}),
    ]
    assert first["outcomes"] == {"a1b2c3d4e5f60718": "ran"}
    # the same notification again: recorded, nothing runs
    again = plan_of(
        state,
        catalog,
        payload(alert(namespace="payments", service="api")),
        now=NOW + timedelta(minutes=5),
    )
    assert again["incident"] == first["incident"] and again["jobs"] == []
    assert again["outcomes"] == {
        "a1b2c3d4e5f60718": "deduplicated: a repeat within the dedupe window"
    }
    # a new alert of the group: only its own scenarios (outage for a Kube* alert)
    new = plan_of(
        state,
        catalog,
        payload(
            alert(namespace="payments", service="api"),
            alert(
                "KubePodCrashLooping", fingerprint="bb01", namespace="payments", deployment="api"
            ),
        ),
        now=NOW + timedelta(minutes=6),
    )
    assert [j["scenario"] for j in new["jobs"]] == ["outage"]
    # a new alert whose scenarios already ran: recorded as deduplicated
    same = plan_of(
        state,
        catalog,
        payload(
            alert(namespace="payments", service="api"),
            alert("HighErrorRate", fingerprint="cc02", namespace="payments", service="api"),
        ),
        now=NOW + timedelta(minutes=7),
    )
    assert same["jobs"] == []
    assert same["outcomes"]["cc02"] == "deduplicated: its scenarios already ran"
    inc = state.incidents[first["incident"]]
    # every repeat of the first alert counts: 1 + 1 + 2
    assert inc.notifications == 4 and inc.deduplicated == 4 and len(inc.jobs) == 3
    # after the dedupe window: a new round of evidence in the same incident
    later = plan_of(
        state,
        catalog,
        payload(alert(namespace="payments", service="api")),
        now=NOW + timedelta(minutes=40),
    )
    assert later["incident"] == first["incident"] and later["new_round"] is True
    assert [j["scenario"] for j in later["jobs"]] == ["triage", "performance"]


def test_resolved_runs_the_recovery_after_every_run_and_closes_the_incident(
    catalog: Catalog,
) -> None:
    state = State()
    first = plan_of(state, catalog, payload(alert(namespace="payments")))
    done = plan_of(
        state,
        catalog,
        payload(alert(status="resolved", namespace="payments")),
        now=NOW + timedelta(minutes=3),
    )
    (recovery,) = done["jobs"]
    assert recovery["kind"] == "recovery" and recovery["scenario"] == "performance"
    assert recovery["given"] == {"namespace": "payments"}  # as the first performance run had it
    assert recovery["after"] == [j["id"] for j in first["jobs"]]
    assert state.incidents[first["incident"]].status == "resolved"
    # a resolved repeat, and then a new firing: a new incident
    again = plan_of(state, catalog, payload(alert(status="resolved", namespace="payments")))
    assert again["incident"] is None and again["jobs"] == []
    reopened = plan_of(
        state, catalog, payload(alert(namespace="payments")), now=NOW + timedelta(minutes=4)
    )
    assert reopened["incident"] != first["incident"]


def test_a_label_that_would_become_a_path_or_a_command_refuses_the_notification(
    catalog: Catalog,
) -> None:
    state = State()
    for hostile in ("../../etc", "prod;rm -rf /", "$(reboot)"):
        with pytest.raises(InvalidParameter, match="cannot become parameter 'namespace'"):
            plan(
                state,
                parse(json.dumps(payload(alert(namespace=hostile)))),
                Routing(),
                catalog,
                now=NOW,
                dedupe_window=timedelta(minutes=30),
            )
    # a value of the right characters that breaks the scenario's own rule (RFC 1123 namespace)
    with pytest.raises(InvalidParameter, match="invalid namespace 'Prod_1'"):
        plan(
            state,
            parse(json.dumps(payload(alert(namespace="Prod_1")))),
            Routing(),
            catalog,
            now=NOW,
            dedupe_window=timedelta(minutes=30),
        )
    assert state.incidents == {} and state.jobs == {}


def test_apply_is_false_whatever_the_route_says(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(
        "routes: [{matchers: ['alertname=~\".*\"'], scenarios: [outage], "
        "parameters: {apply: true, namespace: '{{ labels.namespace }}'}}]"
    )
    routing = load_routing(path)
    catalog.check_routing(routing)
    record = plan_of(State(), catalog, payload(alert("Anything", namespace="shop")), routing)
    outage = next(j for j in record["jobs"] if j["scenario"] == "outage")
    from incidentlib.serve.incidents import Job

    params = catalog.parameters(Job(**outage).spec)
    assert params["apply"] is False and params["namespace"] == "shop"
    # the server's -p defaults reach the scenarios that declare them, typed like `runbook run -p`
    perf = catalog.parameters(Job(**{**outage, "scenario": "performance", "given": {}}).spec)
    assert perf["latency_slo_ms"] == 250.0


def test_the_journal_gives_back_what_it_kept(tmp_path: Path, catalog: Catalog) -> None:
    journal = Journal(tmp_path / ".serve" / "journal.jsonl")
    state = State()
    for raw, now in (
        (payload(alert(namespace="shop")), NOW),
        (payload(alert(namespace="shop")), NOW + timedelta(minutes=1)),
    ):
        record = plan(
            state,
            parse(json.dumps(raw)),
            Routing(),
            catalog,
            now=now,
            dedupe_window=timedelta(minutes=30),
        )
        journal.append(record)
        state.apply(record)
    first_job = next(iter(state.jobs))
    journal.append({"type": "started", "job": first_job, "run_id": "R1"})
    journal.close()
    with open(tmp_path / ".serve" / "journal.jsonl", "a") as f:
        f.write('{"type": "finished", "job": "cut sh')  # a crash mid-line
    again = State()
    for record in Journal(tmp_path / ".serve" / "journal.jsonl").records():
        again.apply(record)
    assert list(again.incidents) == list(state.incidents)
    assert [(j.id, j.state) for j in again.pending()] == [
        (first_job, "running"),
        (list(state.jobs)[1], "queued"),
    ]
    assert again.incidents[next(iter(again.incidents))].deduplicated == 1
    assert (tmp_path / ".serve").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / ".serve" / "journal.jsonl").stat().st_mode & 0o777 == 0o600


def test_the_built_in_routes_name_each_workload_as_the_real_notebooks_declare_it() -> None:
    """A database alert's workload is the database's own (db_deployment); an error-rate alert's is
    the application (app_deployment): the scenario notebooks as shipped, not stand-ins."""
    real = Catalog(Path(__file__).resolve().parents[2] / "notebooks")
    db = plan_of(
        State(),
        real,
        payload(alert("PostgresTooManyConnections", namespace="prod", statefulset="pg-main")),
    )
    assert [(j["scenario"], j["given"]) for j in db["jobs"]] == [
        ("triage", {"namespace": "prod"}),
        ("database", {"namespace": "prod", "db_deployment": "pg-main"}),
    ]
    app = plan_of(State(), real, payload(alert(namespace="shop", deployment="cart")))
    assert [(j["scenario"], j["given"]) for j in app["jobs"]] == [
        ("triage", {"namespace": "shop", "app_deployment": "cart"}),
        ("performance", {"namespace": "shop", "app_deployment": "cart"}),
    ]
