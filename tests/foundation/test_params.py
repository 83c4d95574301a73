import re
from datetime import timedelta

import pytest

from incidentlib.errors import InvalidParameter, RunbookError
from incidentlib.params import (
    format_duration,
    parse_duration,
    validate_name,
    validate_replicas,
    validate_selector,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("5min", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        (" 90S ", 90),
        (45, 45),
        ("500ms", 0.5),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["5 minutes", "", "abc", "5", "-5m", "0s", "5m junk", True, None])
def test_parse_duration_rejects_with_value_and_rule(bad):
    with pytest.raises(InvalidParameter) as e:
        parse_duration(bad, what="since")
    problem = "must be longer than zero" if bad == "0s" else "is not a duration"
    assert str(e.value) == (
        f"since {bad!r} {problem}: expected a number and a unit, e.g. 30s, 5m, 5min, 2h, 1d "
        "(or combined: 1h30m)"
    )
    assert isinstance(e.value, RunbookError)


def test_format_duration_reads_like_kubectl():
    assert [format_duration(s) for s in (5, 119, 372, 3 * 3600 + 240, 26 * 3600, 30 * 86400)] == [
        "5s",
        "119s",
        "6m12s",
        "3h4m",
        "1d2h",
        "30d",
    ]


@pytest.mark.parametrize("good", ["production", "kube-system", "a", "ns1", "a" * 63])
def test_valid_namespaces(good):
    assert validate_name(good) == good


@pytest.mark.parametrize(
    "bad", ["Prod_NS", "-prod", "prod-", "a" * 64, "prod.eu", "", None, "UPPER"]
)
def test_invalid_namespace_quotes_value_and_rule(bad):
    with pytest.raises(InvalidParameter) as e:
        validate_name(bad, what="namespace")
    msg = str(e.value)
    assert repr(bad) in msg and "RFC 1123" in msg


def test_invalid_namespace_suggests_fix():
    with pytest.raises(InvalidParameter, match="did you mean 'prod-ns'"):
        validate_name("Prod_NS")


def test_deployment_names_may_have_dots():
    assert validate_name("api.v2", what="deployment") == "api.v2"
    with pytest.raises(InvalidParameter, match="deployment"):
        validate_name("api_v2", what="deployment")


@pytest.mark.parametrize(("value", "n"), [(0, 0), (5, 5), ("3", 3)])
def test_replicas(value, n):
    assert validate_replicas(value) == n


@pytest.mark.parametrize("bad", [-1, "x", 1.5, True, 100000])
def test_bad_replicas(bad):
    with pytest.raises(InvalidParameter, match="replicas"):
        validate_replicas(bad)


def test_selector():
    assert validate_selector("app=postgres,tier!=cache") == "app=postgres,tier!=cache"
    with pytest.raises(InvalidParameter, match="app postgres"):
        validate_selector("app postgres")


@pytest.mark.parametrize(
    "selector",
    ["app in (postgres)", "app in (postgres, pg),tier", "env notin (dev,test),!canary", "app==db"],
)
def test_set_based_selectors_as_kubectl_takes_them(selector):
    assert validate_selector(selector) == selector


@pytest.mark.parametrize(
    ("selector", "term"),
    [
        ("app in postgres", "'app in postgres'"),
        ("app in (postgres", "'app in (postgres'"),
        ("app in (a b)", "'app in (a b)'"),
        ("app=postgres,", "''"),
    ],
)
def test_a_broken_set_based_selector_names_its_term(selector, term):
    with pytest.raises(InvalidParameter, match=re.escape(f"term {term} is not key")):
        validate_selector(selector)
