"""Parameters read from a notebook's own parameters cell, and checked before anything runs
(pure)."""

from __future__ import annotations

import re

import pytest

from incidentlib.errors import InvalidParameter
from incidentlib.evidence.parameters import coerce_parameters, inspect_parameters
from incidentlib.evidence.run import new_incident_id, validate_incident_id

from .conftest import FIXTURES


@pytest.fixture(scope="module")
def declared():
    return inspect_parameters(FIXTURES / "ok.ipynb")


def test_parameters_come_with_type_default_and_help(declared):
    assert list(declared) == [
        "namespace",
        "count",
        "ratio",
        "flag",
        "dsn",
        "since",
        "replicas",
        "incident_id",
    ]
    ns = declared["namespace"]
    assert (ns.kind, ns.nullable, ns.default, ns.help) == (
        "str",
        False,
        '"production"',
        "the namespace to look at",
    )
    assert (declared["count"].kind, declared["ratio"].kind, declared["flag"].kind) == (
        "int",
        "float",
        "bool",
    )
    assert (declared["dsn"].kind, declared["dsn"].nullable) == ("any", True)
    # papermill's own parser skips `replicas: int | None = None`; the AST does not
    assert (
        declared["replicas"].kind,
        declared["replicas"].nullable,
        declared["replicas"].help,
    ) == ("int", True, "an optional whole number")


def test_text_values_are_converted_to_the_declared_type(declared):
    given = {
        "count": "7",
        "ratio": "0.25",
        "flag": "yes",
        "namespace": "42",
        "replicas": "None",
        "dsn": "host=db",
    }
    out = coerce_parameters(declared, given, from_text=set(given))
    assert out == {
        "count": 7,
        "ratio": 0.25,
        "flag": True,
        "namespace": "42",
        "replicas": None,
        "dsn": "host=db",
    }
    assert coerce_parameters(declared, {"dsn": "[1, 2]"}, from_text={"dsn"}) == {"dsn": [1, 2]}
    # text is text for a str parameter: an option called "none" stays "none"
    assert coerce_parameters(declared, {"namespace": "none"}, from_text={"namespace"}) == {
        "namespace": "none"
    }


@pytest.mark.parametrize(
    ("given", "from_text", "message"),
    [
        ({"count": "many"}, True, "parameter 'count' = 'many': not a whole number; expected int"),
        ({"flag": "maybe"}, True, "parameter 'flag' = 'maybe': not a boolean; expected bool"),
        ({"count": "None"}, True, "None is not allowed here"),
        ({"count": "3"}, False, "parameter 'count' = '3': wrong type (str); expected int"),
        ({"ratio": True}, False, "wrong type (bool); expected float"),
        ({"replicas": 2.5}, False, "expected int or None"),
    ],
)
def test_wrong_types_are_refused_with_what_is_expected(declared, given, from_text, message):
    with pytest.raises(InvalidParameter, match=re.escape(message)):
        coerce_parameters(declared, given, from_text=set(given) if from_text else set())


def test_unknown_parameters_are_refused_with_the_valid_list(declared):
    with pytest.raises(InvalidParameter) as e:
        coerce_parameters(declared, {"namespcae": "x", "count": 1}, scenario="ok")
    text = str(e.value)
    assert "unknown parameter 'namespcae' for scenario 'ok'" in text
    assert (
        "valid parameters: namespace (str), count (int), ratio (float), flag (bool), dsn (any)"
        in text
    )


def test_yaml_values_keep_their_types(declared):
    assert coerce_parameters(
        declared, {"count": 4, "ratio": 1, "flag": False, "replicas": None}
    ) == {"count": 4, "ratio": 1.0, "flag": False, "replicas": None}


def test_incident_ids():
    assert re.fullmatch(r"INC-\d{8}-\d{4}-[0-9a-f]{4}", new_incident_id())
    assert validate_incident_id("INC-20261127-0935-ab12") == "INC-20261127-0935-ab12"
    for bad in ("../etc", "a/b", "", ".hidden", "x" * 81):
        with pytest.raises(InvalidParameter, match="is not valid"):
            validate_incident_id(bad)
