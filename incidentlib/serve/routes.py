"""Which scenarios an alert runs, with which parameters: routes matched on its labels, parameters
templated from its labels and annotations, every value checked like a command-line parameter.

    triage:                       # triage always runs first, once per incident (and per round)
      parameters: {health_probes: 10}
    routes:                       # tried in order; the first that matches wins unless `continue`
      - name: payments
        matchers: ['service="payments"', 'alertname=~"Payment.*"']   # Alertmanager's own syntax
        scenarios: [performance, database]
        parameters:
          namespace: "{{ labels.namespace }}"
          app_deployment: "{{ labels.deployment or labels.service }}"
          latency_slo_ms: 300
        continue: false
    default_routes: true          # after yours: Kube* -> outage, Postgres* -> database,
                                  # *Latency*/*ErrorRate* -> performance
    recovery: performance         # what `status: resolved` runs, against the first run's figures

A template names `labels.X` or `annotations.X` (`or` picks the first that is set); a parameter whose
template finds nothing is left out, so the notebook's default (or `runbook serve -p`) applies. A
value taken from an alert must look like a name (`ALERT_VALUE_RULE`), and the parameters that say
where to connect or what to change (`apply`, `kubeconfig`, `context`, `dsn`, URLs, paths) can never
come from an alert: an alert is data, anyone who can reach Alertmanager can shape it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from ..evidence.parameters import (
    Param,
    check_scenario_parameters,
    coerce_parameters,
    inspect_parameters,
    scenarios,
)
from .alerts import Alert

# Parameters no alert may set: where to connect, with what, what to change, where to post.
NOT_FROM_ALERTS = frozenset({"apply", "kubeconfig", "context", "dsn", "incident_id", "baseline"})
_NOT_FROM_ALERTS_SUFFIX = ("_url", "_dsn", "_path", "_file", "webhook", "password", "token")
_ALERT_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,252}")
ALERT_VALUE_RULE = (
    "a value taken from an alert must be 1-253 letters, digits, '.', '_', '-', ':', '@' or '+', "
    "starting with a letter or digit, without '..' (no path, no shell or query syntax)"
)
_MATCHER = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")
_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.S)
_REFERENCE = re.compile(r"\s*(labels|annotations)\.([A-Za-z_][A-Za-z0-9_]*)\s*")
_ROUTE_KEYS = {"name", "matchers", "match", "match_re", "scenarios", "parameters", "continue"}
_CONFIG_KEYS = {"routes", "triage", "default_routes", "recovery"}


def from_alert_allowed(name: str) -> bool:
    """Whether an alert's labels may set this parameter."""
    return name not in NOT_FROM_ALERTS and not name.endswith(_NOT_FROM_ALERTS_SUFFIX)


def alert_value(value: str, *, label: str, parameter: str) -> str:
    """A label (or annotation) value about to become (part of) a parameter: a name, or refused."""
    if not _ALERT_VALUE.fullmatch(value) or ".." in value:
        raise InvalidParameter(
            f"{label}={value[:80]!r} cannot become parameter {parameter!r}: {ALERT_VALUE_RULE}"
        )
    return value


# ---------------------------------------------------------------------------------------- matchers
@dataclass(frozen=True)
class Matcher:
    """`name op value` like Alertmanager's matchers: =, !=, =~, !~ (regexes anchored at both ends;
    a missing label is the empty text)."""

    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as e:
                raise InvalidParameter(
                    f"matcher {self}: {self.value!r} is not a regular expression ({e})"
                ) from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value)}"


def parse_matcher(text: str) -> Matcher:
    """`alertname=~"Kube.*"`, `severity!=info`: one of Alertmanager's matchers."""
    m = _MATCHER.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidParameter(
            f"matcher {text!r} is not `label=value`, `label!=value`, `label=~regex` or "
            "`label!~regex`"
        )
    name, op, value = m.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidParameter(f"matcher {text!r}: its quoted value is not valid") from None
    return Matcher(name, op, value)


# --------------------------------------------------------------------------------------- templates
def check_template(value: Any, *, where: str) -> None:
    """A route parameter: a literal, or text whose `{{ ... }}` parts each name labels.X or
    annotations.X (several joined by `or`)."""
    if not isinstance(value, str):
        return
    for expr in _TEMPLATE.findall(value):
        for ref in expr.split(" or "):
            if not _REFERENCE.fullmatch(ref):
                raise InvalidParameter(
                    f"{where}: template {{{{{expr}}}}} must name labels.NAME or annotations.NAME "
                    "(several joined by `or`)"
                )
    if "{{" in _TEMPLATE.sub("", value) or "}}" in _TEMPLATE.sub("", value):
        raise InvalidParameter(f"{where}: {value!r} has an unclosed {{{{ ... }}}}")


def is_template(value: Any) -> bool:
    return isinstance(value, str) and _TEMPLATE.search(value) is not None


def render(
    template: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    *,
    parameter: str,
) -> str | None:
    """The template filled from an alert; None when a part finds no value. Every value taken from
    the alert is checked (`alert_value`)."""
    missing = False

    def fill(m: re.Match[str]) -> str:
        nonlocal missing
        for ref in m.group(1).split(" or "):
            ref_m = _REFERENCE.fullmatch(ref)
            assert ref_m is not None  # checked when the routes were loaded
            kind, name = ref_m.groups()
            value = (labels if kind == "labels" else annotations).get(name)
            if value:
                return alert_value(value, label=f"{kind}.{name}", parameter=parameter)
        missing = True
        return ""

    out = _TEMPLATE.sub(fill, template)
    return None if missing else out


# ------------------------------------------------------------------------------------------ routes
CONTEXT = {
    "namespace": "{{ labels.namespace }}",
    # the application's workload (a scenario that does not declare it skips it)
    "app_deployment": "{{ labels.deployment or labels.service }}",
}
# a database alert's workload is the database's own (`db_deployment`), never the application's
DB_CONTEXT = {
    "namespace": "{{ labels.namespace }}",
    "db_deployment": "{{ labels.statefulset or labels.deployment or labels.service }}",
}


@dataclass(frozen=True)
class Route:
    """Alerts whose labels match every matcher run `scenarios` with `parameters`."""

    name: str
    matchers: tuple[Matcher, ...]
    scenarios: tuple[str, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    continue_: bool = False
    builtin: bool = False  # a built-in route: parameters a scenario lacks are skipped

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


DEFAULT_ROUTES = (
    Route(
        "built-in: Kubernetes alerts",
        (parse_matcher('alertname=~"Kube.*"'),),
        ("outage",),
        CONTEXT,
        continue_=True,
        builtin=True,
    ),
    Route(
        "built-in: PostgreSQL alerts",
        (parse_matcher('alertname=~"(Postgres|PostgreSQL|Pg|PG).*"'),),
        ("database",),
        DB_CONTEXT,
        continue_=True,
        builtin=True,
    ),
    Route(
        "built-in: latency and error-rate alerts",
        (parse_matcher('alertname=~".*(Latency|ErrorRate|Errors|5xx|Slow|SLO).*"'),),
        ("performance",),
        CONTEXT,
        continue_=True,
        builtin=True,
    ),
)


@dataclass(frozen=True)
class Spec:
    """One run an alert asks for: a scenario and the parameters it gives (the server's own -p/-f
    defaults are added when it runs); `text`: the names whose values came from templates (converted
    to the parameter's type like `-p` text)."""

    scenario: str
    given: dict[str, Any]
    text: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """Two specs with one key are one run."""
        return json.dumps([self.scenario, self.given], sort_keys=True, default=str)


@dataclass(frozen=True)
class Routing:
    """The routes (yours, then the built-in ones), the triage parameters, the recovery scenario."""

    routes: tuple[Route, ...] = DEFAULT_ROUTES
    triage: Mapping[str, Any] = field(default_factory=lambda: dict(CONTEXT))
    recovery: str = "performance"

    def matched(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes an alert takes, Alertmanager's way: in order, stopping at the first match that
        does not `continue`."""
        out = []
        for route in self.routes:
            if route.matches(labels):
                out.append(route)
                if not route.continue_:
                    break
        return out

    def specs(self, alert: Alert, catalog: Catalog) -> list[Spec]:
        """The runs an alert asks for (scenarios the catalog lacks are skipped: built-in routes
        name them all)."""
        out: dict[str, Spec] = {}
        for route in self.matched(alert.labels):
            for scenario in route.scenarios:
                if scenario not in catalog.paths:
                    continue
                spec = build_spec(
                    scenario,
                    route.parameters,
                    alert.labels,
                    alert.annotations,
                    catalog,
                    skip_undeclared=route.builtin,
                )
                out.setdefault(spec.key, spec)
        return list(out.values())

    def triage_spec(
        self, labels: Mapping[str, str], annotations: Mapping[str, str], catalog: Catalog
    ) -> Spec | None:
        """Triage's run for a group (its common labels and annotations), if there is a triage."""
        if "triage" not in catalog.paths:
            return None
        return build_spec("triage", self.triage, labels, annotations, catalog, skip_undeclared=True)


def build_spec(
    scenario: str,
    parameters: Mapping[str, Any],
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    catalog: Catalog,
    *,
    skip_undeclared: bool,
) -> Spec:
    """A scenario's parameters from a route's templates and literals, checked now (InvalidParameter:
    the webhook's 400, nothing runs)."""
    declared = catalog.declared[scenario]
    given: dict[str, Any] = {}
    text: set[str] = set()
    for name, template in parameters.items():
        if name not in declared:
            if skip_undeclared:
                continue
            raise InvalidParameter(f"scenario {scenario!r} has no parameter {name!r}")
        if not is_template(template):
            given[name] = template
            continue
        value = render(template, labels, annotations, parameter=name)
        if value is not None:
            given[name], text = value, text | {name}
    spec = Spec(scenario, given, frozenset(text))
    catalog.parameters(spec)  # every value checked like a command-line parameter
    return spec


def load_routing(path: str | Path | None) -> Routing:
    """The routing of a YAML file (the module's docstring shows one); the built-in one without."""
    if path is None:
        return Routing()
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise InvalidParameter(f"routes file {str(path)!r} cannot be read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise InvalidParameter(f"routes file {str(path)!r} is not valid YAML: {e}") from None
    where = f"routes file {str(path)!r}"
    if not isinstance(doc, dict):
        raise InvalidParameter(f"{where} must be a mapping with `routes:` (and `triage:`)")
    _no_unknown(doc, _CONFIG_KEYS, where)
    routes = [_route(r, i, where) for i, r in enumerate(doc.get("routes") or [])]
    if doc.get("default_routes", True):
        routes += DEFAULT_ROUTES
    triage = doc.get("triage") or {}
    if not isinstance(triage, dict):
        raise InvalidParameter(f"{where}: triage must be a mapping with `parameters:`")
    _no_unknown(triage, {"parameters"}, f"{where}: triage")
    triage_params = {**CONTEXT, **_parameters(triage.get("parameters"), f"{where}: triage")}
    recovery = doc.get("recovery", "performance")
    if not isinstance(recovery, str):
        raise InvalidParameter(f"{where}: recovery must be a scenario name")
    return Routing(tuple(routes), triage_params, recovery)


def _route(raw: Any, index: int, where: str) -> Route:
    here = f"{where}: routes[{index}]"
    if not isinstance(raw, dict):
        raise InvalidParameter(f"{here} must be a mapping")
    _no_unknown(raw, _ROUTE_KEYS, here)
    matchers = [parse_matcher(t) for t in _list(raw.get("matchers"), f"{here}.matchers")]
    for key, op in (("match", "="), ("match_re", "=~")):
        table = raw.get(key) or {}
        if not isinstance(table, dict):
            raise InvalidParameter(f"{here}.{key} must be a mapping of label: value")
        matchers += [Matcher(str(k), op, str(v)) for k, v in table.items()]
    scenario_names = [str(s) for s in _list(raw.get("scenarios"), f"{here}.scenarios")]
    if not scenario_names:
        raise InvalidParameter(f"{here} names no scenarios")
    return Route(
        str(raw.get("name") or f"routes[{index}]"),
        tuple(matchers),
        tuple(scenario_names),
        _parameters(raw.get("parameters"), here),
        bool(raw.get("continue", False)),
    )


def _parameters(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise InvalidParameter(f"{where}: parameters must be a mapping of name: value")
    for name, value in raw.items():
        check_template(value, where=f"{where}: parameter {name}")
        if is_template(value) and not from_alert_allowed(name):
            raise InvalidParameter(
                f"{where}: parameter {name!r} cannot come from an alert's labels (it says where to "
                "connect, what to change or where to post): give it to `runbook serve -p` instead"
            )
    return dict(raw)


def _list(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidParameter(f"{where} must be a list")
    return raw


def _no_unknown(doc: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InvalidParameter(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(known))}"
        )


# ----------------------------------------------------------------------------------------- catalog
class Catalog:
    """The scenario notebooks the server runs, what each declares, and the server's own parameter
    defaults (`runbook serve -p/-f`), applied to every scenario that declares them."""

    def __init__(
        self,
        notebooks: str | Path,
        defaults: Mapping[str, Any] | None = None,
        *,
        text: Iterable[str] = (),
    ) -> None:
        self.paths: dict[str, Path] = scenarios(notebooks)
        self.declared: dict[str, dict[str, Param]] = {
            name: inspect_parameters(path) for name, path in self.paths.items()
        }
        self.defaults = dict(defaults or {})
        self.text = frozenset(text)
        unknown = [n for n in self.defaults if not any(n in d for d in self.declared.values())]
        if unknown:
            raise InvalidParameter(
                f"parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                f"is declared by no scenario in {notebooks}"
            )
        for name in self.paths:  # a bad default stops here (and the rules are imported now)
            self.parameters(Spec(name, {}))

    def parameters(self, spec: Spec, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A run's parameters: the defaults it declares, the spec's, `extra` (the server's own,
        like a recovery's baseline); coerced and checked; `apply` always False."""
        declared = self.declared[spec.scenario]
        given = {k: v for k, v in self.defaults.items() if k in declared}
        given.update(spec.given)
        given.update(extra or {})
        text = (self.text - set(spec.given) - set(extra or {})) | spec.text
        params = coerce_parameters(
            declared, given, from_text=text & set(given), scenario=spec.scenario
        )
        if "apply" in declared:
            params["apply"] = False  # the alert path never applies a mitigation
        check_scenario_parameters(spec.scenario, params)
        return params

    def check_routing(self, routing: Routing) -> None:
        """Every route's scenarios exist and declare its parameters; literals pass their checks."""
        for route in routing.routes:
            if route.builtin:
                continue
            for scenario in route.scenarios:
                if scenario not in self.paths:
                    raise InvalidParameter(
                        f"route {route.name!r}: unknown scenario {scenario!r}; valid: "
                        f"{', '.join(self.paths) or '(none)'}"
                    )
                literals = {k: v for k, v in route.parameters.items() if not is_template(v)}
                unknown = [k for k in route.parameters if k not in self.declared[scenario]]
                if unknown:
                    raise InvalidParameter(
                        f"route {route.name!r}: scenario {scenario!r} has no parameter "
                        f"{', '.join(map(repr, unknown))}"
                    )
                self.parameters(Spec(scenario, literals))
        if "triage" in self.paths:
            unknown = [
                k for k in routing.triage if k not in CONTEXT and k not in self.declared["triage"]
            ]
            if unknown:
                raise InvalidParameter(f"triage has no parameter {', '.join(map(repr, unknown))}")
            literals = {k: v for k, v in routing.triage.items() if not is_template(v)}
            self.parameters(Spec("triage", literals))
